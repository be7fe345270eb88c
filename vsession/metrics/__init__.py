"""Prometheus metrics on an address of their own (`metrics_bind`), never on the public site.

Everything is read from the running server when Prometheus scrapes: the media path only adds to
plain ints. Counts and sizes only: no label ever carries a name, an id or an address."""
