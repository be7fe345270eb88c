"""The RTP-level forwarder: publishers' packets go to subscribers as packets, rewritten per
subscriber, with no jitter buffer and no depacketizing (see relay.py)."""
