"""The WebSocket at /ws: authentication at the handshake, validated messages, pushes from the server."""
