// Connection quality from getStats: round-trip time, packet loss and received bitrate.

export function classify({ rtt, loss, kbps, expectVideo }) {
  if (rtt > 0.4 || loss > 0.05 || (expectVideo && kbps < 50)) return "poor";
  if (rtt > 0.2 || loss > 0.02 || (expectVideo && kbps < 150)) return "fair";
  return "good";
}

export class QualityMeter {
  constructor() {
    this.last = null;
  }

  /** @param {RTCStatsReport} report */
  measure(report, at = performance.now()) {
    let rtt = 0;
    let lost = 0;
    let received = 0;
    let bytes = 0;
    let video = false;
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && stat.nominated && stat.currentRoundTripTime !== undefined) {
        rtt = stat.currentRoundTripTime;
      }
      if (stat.type === "inbound-rtp") {
        lost += stat.packetsLost || 0;
        received += stat.packetsReceived || 0;
        bytes += stat.bytesReceived || 0;
        if (stat.kind === "video") video = true;
      }
    });
    const previous = this.last;
    this.last = { at, lost, received, bytes };
    if (!previous) return null;
    const packets = received - previous.received + (lost - previous.lost);
    const loss = packets > 0 ? Math.max(0, lost - previous.lost) / packets : 0;
    const kbps = ((bytes - previous.bytes) * 8) / Math.max(1, at - previous.at);
    return { rtt, loss, kbps, level: classify({ rtt, loss, kbps, expectVideo: video }) };
  }
}
