"""Issue 13 in real Chromium: a call where both pages may use only TURN relays (iceTransportPolicy
"relay"), through real coturn running the shipped deploy/turnserver.conf, with the per-participant
credentials the server hands out. Media flows both ways, and each page's selected candidate pair is
a relay one. Renegotiations hand the pages fresh credentials (setConfiguration) without losing the
relay-only policy or the call."""

from pathlib import Path

from playwright.sync_api import Browser, Page

from tests.support.browser_calls import frames_rise, two_party_call
from tests.support.call_server import start_call_server
from tests.support.coturn import running_coturn

# As a client on a network that blocks everything but a TURN server would: relay candidates only.
# Counts setConfiguration calls and their errors, so the test sees the page refresh its credentials.
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__vsessionIce = { configured: 0, errors: [] };
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      super({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
    }
    setConfiguration(config) {
      try {
        super.setConfiguration(config);
        window.__vsessionIce.configured += 1;
      } catch (error) {
        window.__vsessionIce.errors.push(String(error));
        throw error;
      }
    }
  };
})();
"""

SELECTED_PAIR = """async () => {
  const report = await window.vsessionCall.getStats();
  const stats = new Map();
  report.forEach((s) => stats.set(s.id, s));
  for (const s of stats.values()) {
    if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
    const pair = stats.get(s.selectedCandidatePairId);
    return {
      local: stats.get(pair.localCandidateId).candidateType,
      remote: stats.get(pair.remoteCandidateId).candidateType,
    };
  }
  return null;
}"""

ICE_CONFIGURATION = """() => {
  const config = window.vsessionCall.pc.getConfiguration();
  return {
    policy: config.iceTransportPolicy,
    usernames: config.iceServers.map((s) => s.username || ""),
    ...window.__vsessionIce,
  };
}"""


def relayed(page: Page) -> None:
    page.wait_for_function(f"async () => (await ({SELECTED_PAIR})()) !== null", timeout=20000)
    assert page.evaluate(SELECTED_PAIR) == {"local": "relay", "remote": "host"}


def test_a_relay_only_call_through_coturn(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    with running_coturn(tmp_path / "coturn") as turn:
        server = start_call_server(
            tmp_path, f'ice_servers = ["{turn.url}"]', f'turn_secret = "{turn.secret}"'
        )
        try:
            _, _, therapist, client, contexts = two_party_call(
                browser, server, "Relay call", init_script=RELAY_ONLY
            )
            frames_rise(client)
            frames_rise(therapist)
            relayed(client)
            relayed(therapist)

            # The therapist's connection was renegotiated when the client came in: the page took
            # the fresh credential from that offer and kept its relay-only policy.
            therapist_ice = therapist.evaluate(ICE_CONFIGURATION)
            assert therapist_ice["errors"] == [], therapist_ice
            assert therapist_ice["configured"] >= 1, therapist_ice
            assert therapist_ice["policy"] == "relay"
            assert [name.split(":")[1] for name in therapist_ice["usernames"]] == ["therapist"]
            client_ice = client.evaluate(ICE_CONFIGURATION)
            assert [name.split(":")[1] for name in client_ice["usernames"]] == ["1"]
            assert turn.secret not in therapist.content() + client.content()

            therapist.screenshot(path=str(artifacts / "turn-call-therapist.png"))
            client.screenshot(path=str(artifacts / "turn-call-client.png"))
            for context in contexts:
                context.close()
        finally:
            server.stop()
