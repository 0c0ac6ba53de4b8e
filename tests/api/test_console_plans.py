"""The console's "where to sample next" → a device: the ranked list, a confirmation naming the device
and the count, the send, and the device page listing its open planned points."""

from __future__ import annotations

import html as html_lib
import re

from tests.api.test_console_pages import Console, text_of
from tests.api.test_grading_api import CLEAN, put_results, put_sample
from tests.api.test_sync_push import data_for, push, record, register_device, results, village_codes


def _setup(app, client, official, make_account, county):
    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    for p in dry[:6]:
        put_results(app, put_sample(app, p["code"], county=county.county), CLEAN)
    headers, device_id = register_device(client, official, make_account, villages=village_codes(county, 1))
    console = Console(app)
    console.login(official.username, official.password)
    return headers, device_id, console


def test_an_official_sends_the_ranked_list_to_a_device_after_confirming(app, client, official, make_account,
                                                                        county):
    headers, device_id, console = _setup(app, client, official, make_account, county)
    resp = console.get(f"/console/sampling-next?county={county.county}&limit=5&lang=en")
    assert resp.status_code == 200, text_of(resp)[:400]
    html = text_of(resp)
    ranked = re.findall(r'name="parcels" value="([^"]+)"', html)
    assert len(ranked) == 5 and device_id in html and "Where to sample next" in html
    api = client.get("/api/v1/sampling/next", query_string={"county": county.county, "limit": 5},
                     headers=official.headers).get_json()["items"]
    assert ranked == [i["parcel"] for i in api]  # the API's ranking, in its order
    chosen = ranked[:3]
    confirm = console.post("/console/sampling-next/confirm", {"device": device_id, "parcels": chosen})
    assert confirm.status_code == 200
    page = html_lib.unescape(text_of(confirm))
    assert f"Send 3 planned points to device Phone ({device_id})" in page
    outside = [c for c in chosen if not c.startswith(village_codes(county, 1)[0])]
    if outside:
        assert f"{len(outside)} of these parcels are not in this device's assignment" in page
    plan = client.get(f"/api/v1/devices/{device_id}/plan", headers=official.headers).get_json()
    assert plan["plan"] is None  # nothing sent before the confirmation
    # the send without the confirmation step is refused, naming it
    refused = console.post(f"/console/devices/{device_id}/plan", {"parcels": chosen})
    assert refused.status_code == 422 and "confirmed" in text_of(refused)
    sent = console.post(f"/console/devices/{device_id}/plan", {"parcels": chosen, "confirmed": "1"})
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/console/devices/{device_id}")
    device_page = html_lib.unescape(text_of(console.get(f"/console/devices/{device_id}")))
    assert "Sent 3 planned points to Phone (plan 1)" in device_page
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><a class="mono" href="[^"]+">([^<]+)</a>', device_page)
    assert rows == [(str(n), c) for n, c in enumerate(chosen, 1)]
    # a double submit of the confirmation sends nothing twice
    again = console.post(f"/console/devices/{device_id}/plan", {"parcels": chosen, "confirmed": "1"})
    assert "already this list" in html_lib.unescape(text_of(console.get(again.headers["Location"])))
    assert client.get(f"/api/v1/devices/{device_id}/plan", headers=official.headers).get_json()["plan"] == 1
    # a sample on the first parcel closes it: the device page no longer lists it
    feature = next(f for f in county.parcels if f["properties"]["code"] == chosen[0])
    assert results(push(client, headers, [record(data_for(feature, "CON-1"))]))[0]["status"] == "applied"
    device_page = text_of(console.get(f"/console/devices/{device_id}"))
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><a class="mono" href="[^"]+">([^<]+)</a>', device_page)
    assert [c for _, c in rows] == chosen[1:]


def test_the_pages_speak_chinese_and_link_from_county_and_village(app, client, official, make_account, county):
    _, device_id, console = _setup(app, client, official, make_account, county)
    county_page = text_of(console.get(f"/console/county/{county.county}?lang=zh"))
    assert "下一步去哪采样" in county_page and "/console/sampling-next?county=" in county_page
    village = village_codes(county, 1)[0]
    assert f"/console/sampling-next?village={village}" in text_of(console.get(f"/console/village/{village}"))
    html = text_of(console.get(f"/console/sampling-next?village={village}"))
    assert "发送采样计划" in html or "没有需要补采样" in html
    confirm = console.post("/console/sampling-next/confirm", {"device": device_id, "parcels": []})
    assert confirm.status_code == 422 and "请至少勾选一个地块" in text_of(confirm)
    confirm = console.post("/console/sampling-next/confirm", {"device": "dev_nope", "parcels": ["X"]})
    assert confirm.status_code == 404
