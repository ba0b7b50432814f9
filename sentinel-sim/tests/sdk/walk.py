"""Microsoft's own Graph SDK for Python (msgraph-sdk, PyPI) walks the simulated tenant.

Run by sentinel-sim/tests/official_sdk.rs with SIM_URL set to a running simulator. It reads the
tenant as a team embedding the SDK would (users, groups with members, sites, drives, drive delta
rounds, permissions, $batch, a second round after changes) and compares what it read with the
simulator's ground truth (/_sim/dump). Every request is the SDK's own: its URL templates
(`users/delta()`, `sites/getAllSites()`, `drives/{id}/items/root/delta()`), its paging links, its
models. Only the token comes from a small provider here: azure-identity (MSAL) accepts https
authorities only, and the simulator's Entra is plain http on loopback.

Prints one line per check and a closing 'N passed, N failed'; exits 1 if any check failed.
"""

import asyncio
import json
import os
import sys
import urllib.parse

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder as GroupsDelta
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

SIM = os.environ["SIM_URL"].rstrip("/")
HOST = urllib.parse.urlparse(SIM).hostname
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail and not ok else ''}", flush=True)


class SimTokens(AccessTokenProvider):
    """Client credentials against the simulator's Entra token endpoint (v2.0)."""

    def __init__(self, tenant, client_id, secret):
        self.tenant, self.client_id, self.secret = tenant, client_id, secret
        self.token = None

    async def get_authorization_token(self, uri, additional_authentication_context={}):
        if self.token is None:
            async with httpx.AsyncClient() as http:
                r = await http.post(
                    f"{SIM}/{self.tenant}/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self.secret,
                        "scope": "https://graph.microsoft.com/.default",
                    },
                )
                r.raise_for_status()
                self.token = r.json()["access_token"]
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([HOST])


async def follow(first, again):
    """Pages of a delta or paged collection: (values, deltaLink)."""
    values, page = [], await first
    while True:
        values.extend(page.value or [])
        if page.odata_next_link:
            page = await again(page.odata_next_link)
        else:
            return values, getattr(page, "odata_delta_link", None)


async def dump(http, kind):
    r = await http.get(f"{SIM}/_sim/dump/{kind}")
    r.raise_for_status()
    return [json.loads(line) for line in r.text.splitlines() if line]


async def main():
    http = httpx.AsyncClient(timeout=60)
    manifest = (await http.get(f"{SIM}/_sim/manifest")).json()
    tokens = SimTokens(manifest["tenant_id"], manifest["client_id"], os.environ["SIM_SECRET"])
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(tokens))
    adapter.base_url = f"{SIM}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)

    # Users: the SDK's users/delta() round, then a second round after changes.
    users, users_link = await follow(graph.users.delta.get(), lambda l: graph.users.delta.with_url(l).get())
    truth = {u["id"]: u for u in await dump(http, "users")}
    live = {u.id: u for u in users if not (u.additional_data or {}).get("@removed")}
    check("users/delta() returns every user", set(live) == set(truth), f"{len(live)} vs {len(truth)}")
    check(
        "user properties parse into the SDK's model",
        all(live[i].display_name == truth[i]["displayName"] for i in truth if i in live),
    )
    check("a deltaLink ends the round", bool(users_link))

    # Groups with members: a big group comes over several entries, the repeats carry id and members.
    config = RequestConfiguration(
        query_parameters=GroupsDelta.DeltaRequestBuilderGetQueryParameters(select=["displayName", "members", "owners"])
    )
    groups, _ = await follow(graph.groups.delta.get(request_configuration=config), lambda l: graph.groups.delta.with_url(l).get())
    members, owners = set(), set()
    for g in groups:
        for key, into in (("members@delta", members), ("owners@delta", owners)):
            for m in (g.additional_data or {}).get(key, []):
                if "@removed" not in m:
                    into.add((g.id, str(m["id"])))  # the SDK parses GUIDs into UUIDs
    want = {(m["groupId"], m["memberId"]) for m in await dump(http, "memberships")}
    check("groups/delta() with members@delta merges to the memberships", members == want, f"{len(members)} vs {len(want)}")
    want = {(m["groupId"], m["ownerId"]) for m in await dump(http, "ownerships")}
    check("groups/delta() with owners@delta gives the owners", owners == want and len(want) > 0, f"{len(owners)} vs {len(want)}")

    # Sites: getAllSites() and sites/delta() list site collections; subsites, under their parent.
    collections, _ = await follow(graph.sites.get_all_sites.get(), lambda l: graph.sites.get_all_sites.with_url(l).get())
    site_dump = await dump(http, "sites")
    collection_truth = {s["id"] for s in site_dump if s["parentId"] is None}
    check("sites/getAllSites() lists every site collection", {s.id for s in collections} == collection_truth)
    delta_sites, _ = await follow(graph.sites.delta.get(), lambda l: graph.sites.delta.with_url(l).get())
    check("sites/delta() lists every site collection", {s.id for s in delta_sites} == collection_truth)
    sites, queue = list(collections), list(collections)
    while queue:
        page = await graph.sites.by_site_id(queue.pop().id).sites.get()
        sites.extend(page.value or [])
        queue.extend(page.value or [])
    check("sites/{id}/sites leads to every subsite",
          {s.id for s in sites} == {s["id"] for s in site_dump} and len(site_dump) > len(collection_truth))
    team_sites = {s["groupId"]: s["id"] for s in site_dump if s["groupId"]}
    found = {g: (await graph.groups.by_group_id(g).sites.by_site_id("root").get()).id for g in team_sites}
    check("groups/{id}/sites/root is the group's team site", found == team_sites and len(found) > 0, f"{len(found)} groups")

    # Drives of every site, and each user's OneDrive where one is provisioned.
    drives = []
    for s in sites:
        page = await graph.sites.by_site_id(s.id).drives.get()
        drives.extend(page.value or [])
    onedrives = 0
    for u in list(truth.values())[:10]:
        if u["hasDrive"]:
            d = await graph.users.by_user_id(u["id"]).drive.get()
            onedrives += d is not None and d.drive_type == "business"
    check("users/{id}/drive returns the OneDrive", onedrives == sum(u["hasDrive"] for u in list(truth.values())[:10]))
    drive_truth = await dump(http, "drives")
    library_ids = {d["id"] for d in drive_truth if d["siteId"]}
    check("sites/{id}/drives lists every library", {d.id for d in drives} == library_ids)

    # Drive delta as the SDK addresses it: drives/{id}/items/root/delta().
    drive = max(drives, key=lambda d: d.name == "Documents")
    root = graph.drives.by_drive_id(drive.id).items.by_drive_item_id("root")
    items, items_link = await follow(root.delta.get(), lambda l: root.delta.with_url(l).get())
    item_truth = {i["id"] for i in await dump(http, "items") if i["driveId"] == drive.id}
    check("drives/{id}/items/root/delta() returns every item", {i.id for i in items} == item_truth,
          f"{len(items)} vs {len(item_truth)}")
    check("drive items parse (names, parents)", all(i.name for i in items) and all(
        i.parent_reference and i.parent_reference.id for i in items if i.root is None))

    # Permissions of a few items, through the SDK's model.
    perms = 0
    for i in items[:5]:
        page = await graph.drives.by_drive_id(drive.id).items.by_drive_item_id(i.id).permissions.get()
        perms += len(page.value or [])
        for p in page.value or []:
            assert p.roles, "every permission has roles"
    check("items/{id}/permissions parse, with roles", perms > 0)

    # $batch with the SDK's BatchRequestContent. Its items keep absolute URLs, which Graph
    # refuses per request with 400 "Resource not found for the segment" (msgraph-sdk-python
    # #1015, msgraph-sdk-python-core #1116): the simulator must refuse them the same way...
    def batch_of(relative):
        batch = BatchRequestContent()
        for i in items[:3]:
            info = graph.drives.by_drive_id(drive.id).items.by_drive_item_id(i.id).permissions.to_get_request_information()
            info.path_parameters["baseurl"] = adapter.base_url
            item = BatchRequestItem(request_information=info)
            if relative:  # ...and answer the documented workaround: the url made relative.
                item.url = item.url.replace(adapter.base_url, "")
            batch.add_request(item.id, item)
        return batch
    codes = (await graph.batch.post(batch_of(False))).get_response_status_codes()
    check("$batch refuses absolute inner urls as Graph does (400)", len(codes) == 3
          and all(c == 400 for c in codes.values()), str(codes))
    codes = (await graph.batch.post(batch_of(True))).get_response_status_codes()
    check("$batch answers each relative inner request", len(codes) == 3
          and all(c == 200 for c in codes.values()), str(codes))

    # A second round after changes: the SDK follows the stored deltaLinks.
    # (Every kind of change but deleting a library or site, which would take the walked drive.)
    kinds = ["create_file", "create_folder", "modify", "rename", "move", "delete_file", "delete_folder",
             "share", "unshare", "break_inheritance", "restore_inheritance", "add_member", "remove_member",
             "soft_delete_user", "hard_delete_user", "create_user", "update_user"]
    (await http.post(f"{SIM}/_sim/mutate", json={"count": 60, "kinds": kinds})).raise_for_status()
    changed, _ = await follow(graph.users.delta.with_url(users_link).get(), lambda l: graph.users.delta.with_url(l).get())
    check("an incremental users round parses (partial objects included)", all(u.id for u in changed))
    more, _ = await follow(root.delta.with_url(items_link).get(), lambda l: root.delta.with_url(l).get())
    check("an incremental drive round parses", all(i.id for i in more))

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


sys.exit(asyncio.run(main()))
