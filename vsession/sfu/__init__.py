"""The selective forwarding unit: one RTCPeerConnection per participant, media forwarded between them."""
