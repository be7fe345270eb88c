"""Requests for the route walk (tests/http/test_route_walk.py), made by hypothesis as plain data that
names no route: tests/support/route_walk.py gives case i to route i mod n of the app's router, so a
new route is walked without anyone listing it, and fills in what only the running world knows (ids,
cookies, tokens, the current TOTP code) from the `Ref`s and `Param`s here.

A case is one request: who sends it (anonymous, the owner of the objects, another therapist, a guest
of another session or of the owner's, a therapist half-way through sign-in or enrolment), its
method (mostly the route's own, else any), path parameters (real ids, or long digits, unicode,
traversal, %-encodings and invalid UTF-8, sent encoded, raw or double-encoded), a query, the Origin
and CSRF headers (right, missing or wrong), a content type, and a body of any shape and size: forms
with every field a handler reads, plausible or of the wrong type; any JSON, nested deep, with huge
numbers, huge strings and lone surrogates; raw and invalid UTF-8 bytes; bodies just under and over
the 64 KiB limit; nothing at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.support.fresh_draws import draw_in_fresh_interpreter

MAX_BODY = 64 * 1024  # vsession.app.MAX_BODY, restated: a test should not take the limit on trust


@dataclass(frozen=True)
class Ref:
    """A value only the running world knows (see World.refs in tests/support/route_world.py)."""

    name: str


@dataclass(frozen=True)
class Raw:
    """JSON text written as is: numbers Python's json would not write, or not this way."""

    text: str


@dataclass(frozen=True)
class Long:
    """`unit` repeated `count` times, made when sent (hypothesis keeps each example small)."""

    unit: str
    count: int


@dataclass(frozen=True)
class Param:
    ref: str | None  # whose object ("own", "other", "ended"), or None for `text`
    number: int  # a seat number; which choice, for a parameter with fixed choices
    text: str | Long
    encoding: str  # "quote", "raw" (only what HTTP forbids is escaped) or "double"
    use_choice: bool  # for a parameter with fixed choices (e.g. admit|deny|remove), take one


@dataclass(frozen=True)
class Body:
    kind: str  # "none", "bytes", "json" (a tree with Ref/Raw/Long leaves) or "repeat"
    data: Any


@dataclass(frozen=True)
class Case:
    method: str | None  # None: the route's own
    params: tuple[Param, ...]  # by position in the route's path
    query: str  # "" or a template where {sid} is the first parameter
    actor: str
    origin: str  # "ok", "none", "evil" or "null"
    csrf: str  # "own", "none", "other" or "junk"
    extra_cookie: str | None  # None, "junk_therapist", "junk_guest" or "owner_and_guest"
    content_type: str | None  # None: the client's default
    accept: str | None
    body: Body


ACTORS = ["anonymous", "owner", "other_therapist", "guest_other", "guest_own", "second_factor", "enrolling"]
PARAM_REFS = ["own", "own", "own", "other", "ended"]  # the owner's objects most, to get past the door
# Form fields the handlers read (vsession/http/*.py read_fields calls), each with plausible values.
PLAIN_TEXT = st.text(max_size=30)
LONG_TEXT = st.builds(Long, st.sampled_from(["x", "é", "\u202e", " "]), st.sampled_from([4096, 4097, 20_000]))
ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "\ud800", "\udfff", "a\u0000b", "\u202eevil", "<script>alert(1)</script>",
     "' OR 1=1 --", "../../etc/passwd", "%00", "\r\nX-Injected: 1", "🙂" * 20, "ＡＤＡ", "ada\u00ad", "Ada",
     " ada "]
)  # fmt: skip
TEXT = st.one_of(PLAIN_TEXT, PLAIN_TEXT, ODD_TEXT, LONG_TEXT)
HUGE = st.integers(16, 5000).map(lambda n: Raw("9" * n)) | st.sampled_from(
    [Raw("1e999"), Raw("-1e999"), Raw("NaN"), Raw("Infinity"), Raw("-0"), Raw("1.0"), Raw("1E2"), Raw("0x10")]
)
INT = st.one_of(
    st.integers(-3, 10),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**53 - 1, 2**53, 2**63 - 1, 2**63, -(2**63) - 1]),
    HUGE,
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "token": st.sampled_from([Ref("setup_token"), Ref("link_token"), Ref("link_token")]) | TEXT,
    "name": TEXT,
    "username": st.sampled_from([Ref("username"), Ref("other_username"), Ref("enrolling_username")]) | TEXT,
    "password": st.just(Ref("password")) | TEXT,
    "code": st.sampled_from([Ref("totp"), Ref("totp_enrolling"), Ref("recovery")]) | st.text("0123456789 -"),
    "kind": st.sampled_from(["totp", "recovery", "TOTP", ""]) | TEXT,
    "title": TEXT,
    "starts_at": st.just(Ref("now")) | INT,
    "duration_minutes": st.sampled_from([5, 50, 480, 481, 0]) | INT,
    "seats": st.integers(0, 8) | INT,
    "admin": st.booleans() | st.sampled_from([0, 1, "true", None]),
    "current": st.just(Ref("password")) | TEXT,
    "new": st.sampled_from(["amber lantern drifting softly 7", "short"]) | TEXT,
}

REFS = ["username", "password", "totp", "setup_token", "link_token", "own_session", "other_recording"]
scalars = st.one_of(st.none(), st.booleans(), INT, st.floats(), TEXT, st.sampled_from(REFS).map(Ref))
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(sorted(FIELDS)) | TEXT, inner)
    ),
    max_leaves=12,
)


def wrong_type(field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(field, field, field, scalars)  # deep JSON is a body kind of its own, below


# Every field present: read_fields ignores the ones a handler does not read, so any route's form is
# complete, and the handler's own checks are reached.
complete_form = st.fixed_dictionaries({name: wrong_type(values) for name, values in FIELDS.items()})
some_fields = st.fixed_dictionaries(
    {}, optional={name: wrong_type(values) for name, values in FIELDS.items()}
)
repeat = st.builds(
    lambda parts, count: Body("repeat", (parts[0], parts[1], count, parts[2])),
    st.sampled_from(
        [
            (b"", b"[", b""),  # nested past the parser's recursion
            (b"", b'{"a":', b""),
            (b"", b"[", b"]"),
            (b'{"title": "', b"x", b'"}'),  # around the body limit
            (b'{"username": "ada", "password": "', b"\xc3\xa9", b'"}'),
            (b'{"starts_at": ', b"9", b"}"),  # a number with many digits
            (b'{"seats": -', b"9", b"}"),
            (b"", b" ", b""),
            (b"", b"\xff", b""),
            (b'{"name": "', b"\\ud800", b'"}'),
            (b"[", b"1,", b"1]"),
        ]
    ),
    st.one_of(
        st.integers(0, 64),
        st.integers(900, 70_000),
        st.sampled_from([MAX_BODY - 20, MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, 60_000, 200_000]),
    ),
)
raw_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [b"null", b"[]", b"{}", b'"text"', b"1", b"true", b"\xef\xbb\xbf{}", b'{"a": "\xff"}',
         b"\xff\xfe{\x00}\x00", b"{'a': 1}", b'{"a": 1,}', b'{"a": 1}{"b": 2}', b"username=ada&password=x",
         b"--x\r\n\r\n--x--"]
    ),
)  # fmt: skip
bodies = st.one_of(
    complete_form.map(lambda v: Body("json", v)),
    complete_form.map(lambda v: Body("json", v)),
    some_fields.map(lambda v: Body("json", v)),
    json_values.map(lambda v: Body("json", v)),
    repeat,
    raw_bytes.map(lambda v: Body("bytes", v)),
    st.just(Body("none", None)),
)

JUNK_PARAMS = st.one_of(
    st.integers(1, 40).map(lambda n: "9" * n),
    st.sampled_from(
        ["1" * 23, "0", "00", "01", "-1", "+1", " 1", "1_0", "١", "1.5", "1e3", "NaN", "..", ".", "../..",
         "..%2f..", "%2e%2e%2f", "%00", "%zz", "%", "%ff%fe", "%c0%ae", "a/b", "\\..\\", "style.css",
         "index.html", "../web/index.html", "~", "*", "{sid}", "admit", "deny", "remove", "reissue", "end",
         "null", "undefined"]
    ),
    st.text(max_size=30),
    st.builds(Long, st.sampled_from(["a", "9", "%41", "é"]), st.integers(100, 2000)),
)  # fmt: skip
params = st.builds(
    Param,
    ref=st.one_of(st.sampled_from(PARAM_REFS), st.sampled_from(PARAM_REFS), st.none()),
    number=st.integers(0, 5),
    text=JUNK_PARAMS,
    encoding=st.sampled_from(["quote", "quote", "raw", "double"]),
    use_choice=st.sampled_from([True, True, True, False]),
)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "FOO"]
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json;;;", "*/*",
]  # fmt: skip
EXTRA_COOKIES = ["junk_therapist", "junk_guest", "owner_and_guest"]
QUERIES = ["", "?role=therapist", "?role=guest&session={sid}", "?role=therapist&session={sid}", "?a=%ff&b"]

# Anything in every dimension at once.
random_cases = st.builds(
    Case,
    method=st.one_of(st.none(), st.none(), st.none(), st.sampled_from(METHODS)),
    params=st.tuples(params, params, params),
    query=st.one_of(st.sampled_from(QUERIES), st.sampled_from(QUERIES), PLAIN_TEXT.map(lambda t: "?" + t)),
    actor=st.sampled_from(["owner", "owner", *ACTORS]),
    origin=st.sampled_from(["ok"] * 6 + ["none", "evil", "null"]),
    csrf=st.sampled_from(["own"] * 6 + ["none", "other", "junk"]),
    extra_cookie=st.sampled_from([None, None, None, None, *EXTRA_COOKIES]),
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES[:1] * 4), st.sampled_from(CONTENT_TYPES), st.none()),
    accept=st.sampled_from([None, "application/json", "text/html", "*/*"]),
    body=bodies,
)

# One thing wrong at a time: a request as the page would send it (the right headers, the owner's
# objects, every form field plausible), with one fault, so the fault meets the handler's own checks
# instead of a door that refuses the request for something else.
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "token": st.sampled_from([Ref("setup_token"), Ref("link_token")]),
    "name": st.sampled_from(["Alice", "Ana María", "Dr. Zed"]),
    "username": st.sampled_from([Ref("username"), Ref("enrolling_username"), "zed"]),
    "password": st.just(Ref("password")),
    "code": st.sampled_from([Ref("totp"), Ref("totp_enrolling"), Ref("recovery")]),
    "kind": st.sampled_from(["totp", "recovery"]),
    "title": st.sampled_from(["Weekly", "Couple session"]),
    "starts_at": st.just(Ref("now")),
    "duration_minutes": st.sampled_from([5, 50, 480]),
    "seats": st.integers(1, 7),
    "admin": st.booleans(),
    "current": st.just(Ref("password")),
    "new": st.just("amber lantern drifting softly 7"),
}
NUMERIC = {"starts_at", "duration_minutes", "seats", "admin"}
BASE_ACTORS = ["owner"] * 6 + ["guest_own", "guest_own", "second_factor", "enrolling"]
# One kind of bad value, put in every field and one path parameter at once: (text, number, parameter).
# Lengths around the limits of an int64 (19 digits), a float (309) and Python's int parsing (4300).
DIGITS = st.one_of(st.sampled_from([19, 20, 309, 310, 1000, 4300, 4301]), st.integers(16, 400))
huge_everywhere = DIGITS.map(lambda n: ("9" * n, Raw("9" * n), "9" * n))
CLASSES = st.one_of(
    huge_everywhere,
    huge_everywhere,
    st.sampled_from(
        [
            ("-1", -1, "-1"),
            ("", 0, "0"),
            ("\ud800", "\udfff", "%ED%A0%80"),
            ("\x00", None, "%00"),
            (Long("x", 4097), 2**53, Long("a", 300)),
            (Long("é", 20_000), 2**63, Long("%41", 2000)),
            ("١٢", 1.5, "١"),
            (1, "1", "1_0"),
            ([], {}, "%7B%7D"),
            (None, True, "null"),
            ("../../etc/passwd", Raw("1e999"), "..%2f..%2fpyproject.toml"),
        ]
    ),
)
FAULTS = ["none"] + ["field"] * 3 + ["class"] * 4 + ["body"] * 2 + ["big"] * 2 + ["param"] * 2 + [
    "door", "method", "actor", "headers"
]  # fmt: skip


@st.composite
def one_fault(draw: st.DrawFn) -> Case:
    form = {name: draw(good) for name, good in GOOD.items()}
    seat = draw(st.integers(1, 3))
    good_param = Param("own", seat, "", "quote", use_choice=True)
    fields: dict[str, Any] = {
        "method": None,
        "params": [good_param] * 3,
        "query": "",
        "actor": draw(st.sampled_from(BASE_ACTORS)),
        "origin": "ok",
        "csrf": "own",
        "extra_cookie": None,
        "content_type": "application/json",
        "accept": None,
        "body": Body("json", form),
    }
    fault = draw(st.sampled_from(FAULTS))
    if fault == "field":
        form[draw(st.sampled_from(sorted(form)))] = draw(st.one_of(INT, TEXT, scalars, json_values))
    elif fault == "class":
        text, number, param = draw(CLASSES)
        form.update({name: number if name in NUMERIC else text for name in form})
        fields["params"][draw(st.integers(0, 2))] = Param(None, seat, param, "quote", use_choice=False)
    elif fault == "body":
        fields["body"] = draw(bodies)
    elif fault == "big":
        fields["body"] = draw(repeat)
    elif fault == "param":
        fields["params"][draw(st.integers(0, 2))] = draw(params)
    elif fault == "door":
        fields["origin"] = draw(st.sampled_from(["ok", "none", "evil", "null"]))
        fields["csrf"] = draw(st.sampled_from(["own", "none", "other", "junk"]))
        fields["extra_cookie"] = draw(st.sampled_from([None, *EXTRA_COOKIES]))
    elif fault == "method":
        fields["method"] = draw(st.sampled_from(METHODS))
    elif fault == "actor":
        fields["actor"] = draw(st.sampled_from(ACTORS))
    elif fault == "headers":
        fields["content_type"] = draw(st.one_of(st.sampled_from(CONTENT_TYPES), st.none()))
        fields["accept"] = draw(st.sampled_from([None, "application/json", "text/html", "*/*"]))
        fields["query"] = draw(st.one_of(st.sampled_from(QUERIES), PLAIN_TEXT.map(lambda t: "?" + t)))
    fields["params"] = tuple(fields["params"])
    return Case(**fields)


cases = st.one_of(one_fault(), one_fault(), random_cases)


PER_EXAMPLE = 10  # cases per hypothesis example: drawing lists amortises hypothesis's own overhead


def generate_in_this_process(count: int, seed: int) -> list[Case]:
    """`count` cases from a @given function that only records them. Which cases a seed gives also
    depends on this process: see `generate`."""
    collected: list[Case] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=-(-count // PER_EXAMPLE),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(cases, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def collect(drawn: list[Case]) -> None:
        collected.extend(drawn)

    collect()
    return collected[:count]


async def generate(count: int, seed: int) -> list[Case]:
    """`count` cases from hypothesis: the same cases for the same seed, whoever asks."""
    cases: list[Case] = await draw_in_fresh_interpreter(__name__, count, seed)
    return cases
