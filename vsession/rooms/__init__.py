"""Therapy sessions, their one-time client links, the waiting room and who is connected."""
