"""Client tests that share one reference server, each in a fixture of its own."""

import pytest


def test_usage_of_the_fixtures_instance(isolated):
    r = isolated.api("GET", "/instances/usage")
    assert r.status_code == 200, r.text
    usage = r.json()
    assert usage["instance_id"] == isolated.crn
    assert usage["usage_consumed_seconds"] == 42
    assert usage["usage_allocation_seconds"] == 600
    assert usage["usage_period"] is not None  # the current month


def test_a_limit_is_read_back(isolated):
    r = isolated.api("PUT", "/instances/configuration", json={"instance_limit": 300})
    assert r.status_code == 204, r.text
    assert isolated.api("GET", "/instances/configuration").json() == {"instance_limit": 300}


def test_a_limit_below_the_usage_is_refused(isolated):
    r = isolated.api("PUT", "/instances/configuration", json={"instance_limit": 10})
    assert r.status_code == 409
    assert r.json()["errors"][0]["code"]


@pytest.mark.parametrize("round", range(4))
def test_each_test_starts_from_its_document(isolated, round):
    # Another test's PUT never shows here: every test has its own instance.
    assert isolated.api("GET", "/instances/configuration").json() == {}
    assert isolated.api("PUT", "/instances/configuration", json={"instance_limit": 100 + round}).status_code == 204


def test_another_fixtures_instance_is_forbidden(qrserver, isolated):
    r = qrserver.control("POST", "/fixtures", json={"accounts": [{}], "instances": [{"plan_id": "p"}], "principals": [{}]})
    assert r.status_code == 201, r.text
    other = r.json()
    try:
        r = isolated.api("GET", "/instance", crn=other["instances"][0])
        assert r.status_code == 403
    finally:
        qrserver.control("DELETE", f"/fixtures/{other['id']}")


def test_a_fault_scoped_to_the_fixture(qrserver, isolated):
    r = qrserver.control("POST", "/faults", json={"fixture": isolated.id, "operation": "get_usage", "status": 503, "count": 1})
    assert r.status_code == 201, r.text
    assert isolated.api("GET", "/instances/usage").status_code == 503
    assert isolated.api("GET", "/instances/usage").status_code == 200


def test_a_deleted_fixtures_token_is_refused(qrserver, isolated):
    assert isolated.api("GET", "/instance").status_code == 200
    assert qrserver.control("DELETE", f"/fixtures/{isolated.id}").status_code == 204
    r = isolated.api("GET", "/instance")
    assert r.status_code == 401
    assert r.json()["trace"] == r.headers["X-Correlation-ID"]
