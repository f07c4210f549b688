"""The first ten minutes: help with no arguments, and retries that talk: every retry says what
failed and when the next try is, and the final error names the API's address and the variable
that set it (a wrong RENDER_API_URL used to give 11-12 s of silence, then no address)."""

from __future__ import annotations

import re

import pytest

from authkit_setup.errors import ApiConnectionError
from authkit_setup.providers.render import RenderClient
from tests.helpers import run_cli_process


def test_each_retry_says_what_failed_and_when_the_next_try_is(closed_port: int) -> None:
    notices: list[str] = []
    sleeps: list[float] = []
    client = RenderClient(
        token="rnd_test_token_for_retries",
        base_url=f"http://127.0.0.1:{closed_port}/v1",
        base_url_source="set by RENDER_API_URL",
        max_retries=3,
        sleep=sleeps.append,
        on_retry=notices.append,
    )
    with pytest.raises(ApiConnectionError) as caught:
        client.get("/services")
    assert len(notices) == 3 == len(sleeps)
    for number, (notice, slept) in enumerate(zip(notices, sleeps, strict=True), start=1):
        match = re.fullmatch(
            rf"Render API at 127\.0\.0\.1:{closed_port} refused the connection; "
            rf"retry {number} of 3 in (\d+(?:\.\d)?) s",
            notice,
        )
        assert match is not None, notice
        assert float(match.group(1)) == pytest.approx(slept, abs=0.51)
    assert str(caught.value) == (
        f"Render API at 127.0.0.1:{closed_port} (set by RENDER_API_URL) refused the "
        "connection after 4 tries: GET /services"
    )


def test_a_server_error_retry_names_the_status(closed_port: int) -> None:
    import httpx

    answers = iter([httpx.Response(503, json={"message": "busy"}), httpx.Response(200, json=[])])
    notices: list[str] = []
    client = RenderClient(
        token="rnd_test_token_for_retries",
        base_url="http://127.0.0.1:1/v1",
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=lambda seconds: None,
        on_retry=notices.append,
    )
    assert client.get("/services") == []
    assert len(notices) == 1
    assert notices[0].startswith("Render API at 127.0.0.1:1 answered 503; retry 1 of 5 in ")


def test_unreachable_api_talks_on_stderr_and_names_the_variable(closed_port: int) -> None:
    result = run_cli_process(
        "render",
        "--service",
        "my-api",
        env={
            "RENDER_API_URL": f"http://127.0.0.1:{closed_port}/v1",
            "RENDER_API_KEY": "rnd_test_token_for_retries",
            "AUTHKIT_HTTP_RETRIES": "2",
        },
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    retries = [line for line in lines if "; retry " in line]
    assert [line.split("; retry ")[1].split(" in ")[0] for line in retries] == ["1 of 2", "2 of 2"]
    assert (
        f"error: Render API at 127.0.0.1:{closed_port} (set by RENDER_API_URL) refused the "
        "connection after 3 tries: GET /services" in lines
    )
    assert "rnd_test_token_for_retries" not in result.output


@pytest.mark.parametrize("raw", ["-1", "many", "21"])
def test_bad_retry_count_is_a_usage_error(raw: str) -> None:
    result = run_cli_process(
        "render",
        "--service",
        "my-api",
        env={"RENDER_API_KEY": "rnd_test_token_for_retries", "AUTHKIT_HTTP_RETRIES": raw},
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        f"error: AUTHKIT_HTTP_RETRIES={raw!r} is not a whole number from 0 to 20"
    )


def test_no_arguments_prints_the_help_with_the_command_list() -> None:
    result = run_cli_process()
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == run_cli_process("--help").stdout
    assert "Commands" in result.stdout and "render" in result.stdout
