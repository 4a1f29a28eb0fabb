"""One API shape: a root document, problem codes explained on a page the product serves, OPTIONS
without class names, and an OpenAPI document that describes every error and header."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client

from callcenter.problems import PROBLEMS
from tests.conftest import BASE_DIR
from tests.helpers import ApiClient, assert_problem

SOURCE_DIRS = ("agents", "calls", "assignment", "tenants", "callcenter", "simulation", "audit", "dashboard", "webhooks")


@pytest.fixture(scope="module")
def schema() -> dict:
    response = Client().get("/schema", HTTP_HOST="localhost")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


class RootDocumentTests:
    @pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
    def test_it_links_the_docs_from_the_root(self, alpha, host):
        response = Client().get("/", HTTP_HOST=host)

        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "Callcenter API"
        assert body["links"]["docs"] == "/docs" and body["links"]["problems"] == "/problems"
        for link in body["links"].values():
            assert Client().get(link, HTTP_HOST=host).status_code in (200, 302), link
        assert ("dashboard" in body["links"]) == (host == "alpha.localhost")
        assert "Accept" in response["Vary"]

    @pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
    def test_a_browser_gets_a_page_with_the_same_links(self, alpha, host):
        browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        links = Client().get("/", HTTP_HOST=host, HTTP_ACCEPT="*/*").json()["links"]

        response = Client().get("/", HTTP_HOST=host, HTTP_ACCEPT=browser_accept)

        assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
        page = response.content.decode()
        for link in links.values():
            assert f'href="{link}"' in page, link
        assert ('href="/dashboard/"' in page) == (host == "alpha.localhost")


class ProblemCatalogueTests:
    def test_every_code_the_code_raises_is_explained(self):
        raised: set[str] = set()
        for directory in SOURCE_DIRS:
            for path in (BASE_DIR / directory).rglob("*.py"):
                text = path.read_text()
                raised |= set(re.findall(r'\bcode="([a-z_]+)"', text))
                raised |= set(re.findall(r'not_found\("[^"]+", "([a-z_]+)"\)', text))
        raised -= {"invalid", "unknown_field"} - set(PROBLEMS)  # DRF field-level codes inside `errors`
        assert raised, "found no code at all"
        assert raised <= set(PROBLEMS), sorted(raised - set(PROBLEMS))

    def test_the_problems_page_explains_every_code(self, alpha):
        response = Client().get("/problems", HTTP_HOST="localhost")

        assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
        page = response.content.decode()
        for code in PROBLEMS:
            assert f'id="{code}"' in page, code
        assert "`" not in page and "<code>Retry-After</code>" in page  # code spans are HTML, not backticks

    def test_a_problem_links_its_code_s_entry_and_carries_the_request_id(self, alpha):
        response = alpha.client().get(f"/agents/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers={"X-Request-ID": "req-7"})

        body = assert_problem(response, 404, "agent_not_found")
        assert body["type"] == "/problems#agent_not_found"
        assert body["request_id"] == "req-7" == response["X-Request-ID"]


class OptionsTests:
    def test_it_names_methods_not_classes(self, alpha):
        response = alpha.client().request("OPTIONS", "/agents")

        assert response.status_code == 200
        body = response.json()
        assert set(body["methods"]) == {"GET", "HEAD", "POST"} and body["documentation"] == "/docs"
        assert "Api" not in response.content.decode()


class OpenApiDocumentTests:
    def test_no_operation_is_described_by_a_class_name(self, schema):
        described = {
            f"{method.upper()} {path}": operation.get("description", "")
            for path, item in schema["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict)
        }
        assert described
        assert not {name: text for name, text in described.items() if re.search(r"\b\w+Api\b", text)}

    def test_every_operation_documents_its_problems_and_the_request_id(self, schema):
        operations = [
            (path, method, operation)
            for path, item in schema["paths"].items()
            for method, operation in item.items()
            if method in ("get", "post", "put", "patch", "delete") and operation["security"] != []
        ]
        assert len(operations) > 20
        problem = {"$ref": "#/components/schemas/Problem"}
        for path, method, operation in operations:
            responses = operation["responses"]
            for status in ("401", "429"):
                assert responses[status]["content"]["application/problem+json"]["schema"] == problem, (path, method)
            if "{" in path:
                assert "404" in responses, (path, method)
            if method in ("post", "put", "patch"):
                assert "400" in responses and "415" in responses, (path, method)
            assert "Retry-After" in responses["429"]["headers"]
            for status, response in responses.items():
                if status != "204":
                    assert "X-Request-ID" in response.get("headers", {}), (path, method, status)
            assert {"ApiKeyBearer": []} in operation["security"], (path, method)

    def test_every_201_documents_its_location(self, schema):
        created = [
            (path, method)
            for path, item in schema["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "201" in operation.get("responses", {})
        ]
        assert ("/agents", "post") in created and ("/calls", "post") in created
        for path, method in created:
            assert "Location" in schema["paths"][path][method]["responses"]["201"]["headers"], path

    def test_post_calls_explains_idempotency(self, schema):
        operation = schema["paths"]["/calls"]["post"]
        key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")

        assert key["in"] == "header" and "422" in key["description"]
        assert "422" in operation["responses"]
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]

    def test_lists_are_documented_as_pages(self, schema):
        calls = schema["components"]["schemas"]["CallPage"]
        agents = schema["components"]["schemas"]["AgentPage"]

        assert set(calls["properties"]) == {"next", "previous", "results"}
        assert set(agents["properties"]) == {"count", "next", "previous", "results"}
        assert schema["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"

    def test_request_bodies_refuse_unknown_fields_and_strings_say_what_they_accept(self, schema):
        components = schema["components"]["schemas"]
        bodies = [
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
            for item in schema["paths"].values()
            for operation in item.values()
            if isinstance(operation, dict) and "requestBody" in operation
        ]
        assert len(bodies) >= 10
        for name in bodies:
            assert components[name]["additionalProperties"] is False, name
        create_call = components["CallCreateInputRequest"]["properties"]
        assert re.fullmatch(create_call["phone_number"]["pattern"], "+34600123456")
        name = re.compile(components["AgentCreateInputRequest"]["properties"]["name"]["pattern"])
        assert name.match(" Ana ") and not name.match("   ") and not name.match("A\x00na")
        status = components[components["AgentSetStatusInputRequest"]["properties"]["status"]["$ref"].rpartition("/")[2]]
        assert set(status["enum"]) == {"OFFLINE", "AVAILABLE", "BREAK"}

    def test_query_parameters_state_their_bounds(self, schema):
        parameters = {p["name"]: p for p in schema["paths"]["/agents"]["get"]["parameters"]}
        assert parameters["limit"]["schema"]["minimum"] == 1 and parameters["limit"]["schema"]["maximum"] == 500
        assert parameters["page"]["schema"]["minimum"] == 1
        assert parameters["agent_type"]["schema"]["maxLength"] == 50
        assert all(p["allowEmptyValue"] for p in parameters.values())  # ?status= is read as not sent
        calls = {p["name"]: p for p in schema["paths"]["/calls"]["get"]["parameters"]}
        assert calls["agent_id"]["schema"]["format"] == "uuid"
        assert calls["created_after"]["schema"]["format"] == "date-time"
        key = next(p for p in schema["paths"]["/calls"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
        assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)

    def test_an_empty_patch_changes_nothing(self, alpha):
        response = alpha.client().patch("/agent-types/agente_tipo_1", {})

        assert response.status_code == 200 and response.json()["slug"] == "agente_tipo_1"

    def test_a_created_type_s_location_answers(self, alpha):
        client: ApiClient = alpha.client()
        rates = {f"llamada_tipo_{n}": 0.1 for n in range(1, 5)}

        response = client.post("/agent-types", {"slug": "senior", "name": "Senior", "conversion_rates": rates})

        assert response.status_code == 201 and response["Location"] == "/agent-types/senior"
        assert client.get(response["Location"]).json()["slug"] == "senior"
