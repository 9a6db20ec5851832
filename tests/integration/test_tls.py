"""Transport security end to end, over real sockets with certificates from throwaway trustme CAs (none committed).

- Security profile 2: wss:// with the server certificate of ``[ocpp] tls_cert``/``tls_key`` plus HTTP Basic. A
  simulated charger runs a session through the whole daemon and its order reaches the mock province, itself served
  over https and verified against ``[province] ca_file``. Plain ws:// to the TLS port and a TLS 1.1 client are
  refused (the TLS 1.1 client is first shown able to speak TLS 1.1 to a server that allows it).
- Security profile 3: ``[ocpp] tls_client_ca``. A charger whose certificate chains to that CA and names it (subject
  CN = its charge point id) is served; no certificate or one from another CA fails the TLS handshake, before any
  HTTP; a certificate of another charger is refused with 403, logged with the identity and the CN. A configured
  Basic password is not required, but if credentials are sent they must be right.
- The province over https: with the wrong CA no push is ever marked sent, each failed attempt is retried and logged
  once, without secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from simulators.charger import Sim16, Sim201, SimClock
from simulators.province import MockProvince
from tests.acceptance.conftest import Store, sim_clock
from tests.conftest import eventually

DC, AC = "CP-DC-01", "CP-AC-01"  # the example config's 1.6 and 2.0.1 chargers
PASSWORD = "wss-Basic-Pa55word"
ORDER = "notification_orderInfo"
TLS_FAILURES = (ssl.SSLError, ConnectionError, InvalidMessage)  # TLS 1.3 reports a refused certificate as EOF
WriteConfig = Callable[..., Path]


class Pki:
    """Throwaway CAs and the PEM files of the daemon: its server certificate (127.0.0.1), the chargers' CA, the
    province's CA; and a rogue CA that signs whatever it is asked."""

    def __init__(self, directory: Path) -> None:
        self.server_ca, self.chargers_ca, self.province_ca, self.rogue_ca = (trustme.CA() for _ in range(4))
        self.cert, self.key = directory / "server-cert.pem", directory / "server-key.pem"
        self.chargers_ca_file, self.province_ca_file = directory / "chargers-ca.pem", directory / "province-ca.pem"
        self.rogue_ca_file = directory / "rogue-ca.pem"
        leaf = self.server_ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        leaf.private_key_pem.write_to_path(str(self.key))
        self.chargers_ca.cert_pem.write_to_path(str(self.chargers_ca_file))
        self.province_ca.cert_pem.write_to_path(str(self.province_ca_file))
        self.rogue_ca.cert_pem.write_to_path(str(self.rogue_ca_file))

    def charger(self, cn: str | None = None, ca: trustme.CA | None = None) -> ssl.SSLContext:
        """A charger's TLS context: trusts the server's CA; presents a certificate with subject ``cn`` (signed by
        ``ca``, the chargers' CA by default) when ``cn`` is given."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if cn is not None:
            (ca or self.chargers_ca).issue_cert(f"{cn.lower()}.chargers.test", common_name=cn).configure_cert(context)
        return context

    def province_server(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.province_ca.issue_cert("127.0.0.1").configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_bridge")


@pytest.fixture
async def https_province(config: Config, pki: Pki) -> AsyncIterator[MockProvince]:
    mock = MockProvince.from_config(config)
    await mock.start(ssl=pki.province_server())
    yield mock
    await mock.stop()


@contextlib.asynccontextmanager
async def daemon(config: Config) -> AsyncIterator[App]:
    """The whole daemon in this process, started and, at the end, stopped."""
    app = App(config, drain_timeout_s=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop), name="edge-bridge")
    try:
        started = asyncio.create_task(app.started.wait())
        await asyncio.wait({started, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # it failed to start: its error
        assert started.done(), "the daemon did not start"
        yield app
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


def wss(app: App, identity: str = DC) -> str:
    return f"wss://127.0.0.1:{app.ocpp_port}/ocpp/{identity}"


def profile(pki: Pki, *, client_ca: bool, province: MockProvince | None = None) -> Callable[[dict[str, Any]], None]:
    """Profile 2 (or 3 with ``client_ca``); CP-DC-01 with a Basic password; pushes to ``province`` when given."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["ocpp"].update(tls_cert=str(pki.cert), tls_key=str(pki.key))
        if client_ca:
            raw["ocpp"]["tls_client_ca"] = str(pki.chargers_ca_file)
        raw["stations"][0]["chargers"][0]["password"] = PASSWORD
        if province is not None:
            assert province.url is not None
            raw["province"].update(base_url=province.url, ca_file=str(pki.province_ca_file))
            raw["province"].update(retry_initial_s=0.05, retry_max_s=0.2)

    return mutate


def connected(config: Config, identity: str) -> bool:
    rows = Store(Path(config.storage.path)).rows("SELECT connected FROM chargers WHERE ocpp_id = ?", (identity,))
    return bool(rows and rows[0]["connected"])


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


# ---------------------------------------------------------------------------------------------------- profile 2


async def test_profile_2_a_session_over_wss_with_basic_auth_reaches_an_https_province(
    write_config: WriteConfig, pki: Pki, https_province: MockProvince
) -> None:
    config = load_config(write_config(profile(pki, client_ca=False, province=https_province)))
    async with daemon(config) as app:
        async with Sim16(wss(app), clock=sim_clock(), password=PASSWORD, ssl=pki.charger()) as sim:
            await sim.connect(boot=True)
            await sim.plug_in(1)
            tx = await sim.start_charging(1, id_tag="TAG-TLS")
            await sim.charge(1, power_kw=60, minutes=10, sample_every_s=300)
            await sim.stop_charging(1, reason="Local")
            await sim.unplug(1)
        await eventually(lambda: len(https_province.accepted(ORDER)) == 1, "the order at the https province")

    assert isinstance(tx, int) and [a for a in sim.answers if not a.ok] == []
    (order,) = https_province.accepted(ORDER)
    assert (order["ConnectorID"], order["TotalPower"]) == ("370202000001001A", Decimal("10.00"))
    assert https_province.problems() == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_profile_2_refuses_wrong_credentials_plain_ws_and_tls_1_1(write_config: WriteConfig, pki: Pki) -> None:
    config = load_config(write_config(profile(pki, client_ca=False)))
    async with daemon(config) as app:
        with pytest.raises(InvalidStatus) as refused:
            await Sim16(wss(app), password="wrong-password", ssl=pki.charger()).connect()
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidMessage):  # plain ws:// to the TLS port: no HTTP answer comes back
            await connect(f"ws://127.0.0.1:{app.ocpp_port}/ocpp/{DC}", subprotocols=["ocpp1.6"], open_timeout=5)
        with pytest.raises(TLS_FAILURES):
            await connect(wss(app), ssl=await tls_1_1_client(pki), open_timeout=5)
        assert not connected(config, DC)


async def tls_1_1_client(pki: Pki) -> ssl.SSLContext:
    """A client that offers only TLS 1.1, shown able to complete TLS 1.1 with a server that allows it."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    pki.server_ca.configure_trust(client)
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    lenient.minimum_version = ssl.TLSVersion.TLSv1_1
    lenient.set_ciphers("DEFAULT:@SECLEVEL=0")
    lenient.load_cert_chain(pki.cert, pki.key)
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, ssl=lenient)
    async with server:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1], ssl=client)
        except (ssl.SSLError, ConnectionError):
            pytest.skip("this OpenSSL cannot speak TLS 1.1 at all")
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()
    return client


# ---------------------------------------------------------------------------------------------------- profile 3


async def test_profile_3_serves_a_charger_whose_certificate_names_it_without_basic_auth(
    write_config: WriteConfig, pki: Pki
) -> None:
    config = load_config(write_config(profile(pki, client_ca=True)))
    async with daemon(config) as app:
        async with Sim201(wss(app, AC), clock=SimClock(), ssl=pki.charger(AC)) as ac:
            await ac.connect(boot=True)
            assert ac.boot_answer is not None and ac.boot_answer["status"] == "Accepted"
        async with Sim16(wss(app), clock=SimClock(), ssl=pki.charger(DC)) as dc:  # has a password; sends none
            await dc.connect(boot=True)
            assert dc.boot_answer is not None and dc.boot_answer["status"] == "Accepted"
        async with Sim16(wss(app), clock=SimClock(), password=PASSWORD, ssl=pki.charger(DC)) as dc:
            await dc.connect(boot=True)  # a profile 2 charger moved to profile 3 and still sending Basic
            assert dc.boot_answer is not None and dc.boot_answer["status"] == "Accepted"
        with pytest.raises(InvalidStatus) as refused:  # credentials sent must be right
            await Sim16(wss(app), password="wrong-password", ssl=pki.charger(DC)).connect()
        assert refused.value.response.status_code == 401


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_profile_3_without_a_certificate_of_the_chargers_ca_the_tls_handshake_fails(
    write_config: WriteConfig, pki: Pki, caplog: pytest.LogCaptureFixture, tls_version: ssl.TLSVersion
) -> None:
    config = load_config(write_config(profile(pki, client_ca=True)))
    async with daemon(config) as app:
        for context in (pki.charger(), pki.charger(DC, ca=pki.rogue_ca), pki.charger(DC, ca=pki.server_ca)):
            context.minimum_version = context.maximum_version = tls_version
            with pytest.raises(TLS_FAILURES):
                await Sim16(wss(app), password=PASSWORD, ssl=context).connect()
        assert records(caplog, "charger_refused") == []  # refused before any HTTP: no identity was read
        assert not connected(config, DC)
        served = pki.charger(DC)  # the same client with the right certificate: the failures above were the certificate
        served.minimum_version = served.maximum_version = tls_version
        async with Sim16(wss(app), clock=SimClock(), ssl=served) as dc:
            await dc.connect(boot=True)
            assert connected(config, DC)


async def test_profile_3_a_certificate_of_another_charger_is_refused_with_403_and_logged(
    write_config: WriteConfig, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(profile(pki, client_ca=True)))
    async with daemon(config) as app:
        with pytest.raises(InvalidStatus) as refused:
            await Sim16(wss(app), password=PASSWORD, ssl=pki.charger(AC)).connect()

    assert refused.value.response.status_code == 403
    (record,) = records(caplog, "charger_refused")
    fields = {k: getattr(record, k, None) for k in ("charger", "cn", "status", "reason")}
    assert fields == {
        "charger": DC,
        "cn": AC,
        "status": 403,
        "reason": "the client certificate's CN is not the charge point id",
    }
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "BEGIN" not in logged and PASSWORD not in logged
    assert not connected(config, DC)


# ---------------------------------------------------------------------------------------------------- the province


async def test_an_https_province_with_the_wrong_ca_gets_nothing_and_nothing_is_marked_sent(
    write_config: WriteConfig, pki: Pki, https_province: MockProvince, caplog: pytest.LogCaptureFixture
) -> None:
    def wrong_ca(raw: dict[str, Any]) -> None:
        profile(pki, client_ca=False, province=https_province)(raw)
        raw["province"]["ca_file"] = str(pki.rogue_ca_file)

    config = load_config(write_config(wrong_ca))
    async with daemon(config) as app:
        retries = lambda: records(caplog, "push_retry")  # noqa: E731
        await eventually(lambda: len(retries()) >= 3, "three failed attempts")
        assert app.ocpp_port is not None

    store = Store(Path(config.storage.path))
    rows = store.rows("SELECT interface, state, attempts, sent_at, last_error FROM outbox")
    assert rows and all(r["state"] == "pending" and r["sent_at"] is None for r in rows)
    assert sum(r["attempts"] for r in rows) == len(retries())  # each failure logged once
    assert https_province.received == [] and https_province.tokens_issued == 0
    for record in retries():
        assert "CERTIFICATE_VERIFY_FAILED" in record.reason
    secrets = [config.province.secret(n) for n in ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")]
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert not any(secret in logged or secret in str(rows) for secret in secrets)
