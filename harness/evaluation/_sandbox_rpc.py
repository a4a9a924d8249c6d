"""The call protocol between a check's two processes: the driver runs the tests, the candidate the completion.

Stdlib only (loaded by path by `_sandbox_runner.py`, which runs without `site`). Why two processes:
when tests and completion share an interpreter, the completion can reach everything that decides
the verdict (stack frames, `builtins`, the result channel, `__eq__` of what it returns). Here the
completion runs alone in the candidate process; the test code runs in the driver, which the
candidate cannot see, signal or trace (another PID namespace, another uid or a non-dumpable
process), and only the driver reports the verdict, on a pipe the candidate never holds.

What crosses the socket is data, never objects:
- plain values (None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset,
  range, Fraction, Decimal, dates, deque, OrderedDict) are copied and rebuilt in the driver as
  genuine built-in types, so an overridden `__eq__`, `__hash__` or `__bool__` never travels; a
  subclass of a plain type (a namedtuple, an int subclass) arrives as its base type;
- anything else the completion hands over (an instance of its own class, a function) arrives as a
  `Handle`. For HumanEval (`strict`: the answers are values) a handle can only be called: no
  attribute, operator, comparison or truth test on it, so an object that claims to equal (or
  subtract to zero from, or contain) anything fails. For unit tests of classes, calls, attributes,
  item access and unary operators are forwarded to the candidate; comparisons, `in` and binary
  operators only between the candidate's own objects: `handle == 5`, `handle - 2.5` or `5 in
  handle` never reach the completion (it would see the expected value and could echo it);
- a test's own function or class passed as an argument (a `key=lambda ...`) can be called back by
  the candidate, nothing more: no attribute of a driver object is ever readable from the
  candidate, so it cannot walk from a callback to the driver's globals.
An exception raised by the completion arrives as the built-in exception of the same name (else
`CandidateError`); `SystemExit` and `KeyboardInterrupt` from the completion arrive as
`CandidateError`, so they fail the test that called it.
"""

import builtins
import json
import struct

MAX_FRAME = 64 << 20
MAX_DEPTH = 200
TEST_FILE = "<test>"
_INT_EXACT = 1 << 53


class ChannelClosed(Exception):
    """The other side went away or broke the protocol."""


class CandidateError(Exception):
    """The completion raised something that is not a built-in exception."""


# ---------------------------------------------------------------------------------------------
# Framing: a 4-byte length, then compact JSON.


def send(sock, message):
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME:
        raise ValueError(f"message of {len(data)} bytes is over the {MAX_FRAME}-byte limit")
    sock.sendall(struct.pack("<I", len(data)) + data)


def _recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ChannelClosed("the other process closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(sock):
    (n,) = struct.unpack("<I", _recv_exact(sock, 4))
    if n > MAX_FRAME:
        raise ChannelClosed(f"frame of {n} bytes is over the limit")
    try:
        return json.loads(_recv_exact(sock, n))
    except ValueError as exc:
        raise ChannelClosed(f"malformed frame: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Values.


def _typename(value):
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


def encode(value, export, depth=0):
    """`value` as tagged JSON; `export(obj)` turns a non-plain object into a handle tag."""
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -_INT_EXACT < value < _INT_EXACT else {"t": "int", "v": format(value, "x")}
    if t is float:
        return {"t": "float", "v": float.hex(value)} if value != value or value in (float("inf"), float("-inf")) else value
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to compare")
    d = depth + 1
    if t is list:
        return [encode(v, export, d) for v in value]
    if t is tuple:
        return {"t": "tuple", "v": [encode(v, export, d) for v in value]}
    if t is dict:
        return {"t": "dict", "v": [[encode(k, export, d), encode(v, export, d)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"t": t.__name__, "v": [encode(v, export, d) for v in value]}
    if t is bytes or t is bytearray:
        return {"t": t.__name__, "v": value.hex()}
    if t is complex:
        return {"t": "complex", "v": [encode(value.real, export, d), encode(value.imag, export, d)]}
    if t is range:
        return {"t": "range", "v": [value.start, value.stop, value.step]}
    name = _typename(value)
    if name in _BY_NAME:
        return _BY_NAME[name](value, export, d)
    # Subclasses of plain types travel as their base type, read with the base type's own methods
    # (an override of __eq__ or __iter__ on the subclass is left behind).
    for base in (bool, int, float, str, bytes):
        if isinstance(value, base):
            return encode(base.__new__(base, value) if base is not bool else bool(int.__int__(value)), export, depth)
    if isinstance(value, tuple):
        return encode(tuple.__new__(tuple, tuple.__iter__(value)), export, depth)
    if isinstance(value, list):
        return encode(list(list.__iter__(value)), export, depth)
    if isinstance(value, dict):
        return encode({k: dict.__getitem__(value, k) for k in dict.__iter__(value)}, export, depth)
    if isinstance(value, (set, frozenset)):
        return encode(set(set.__iter__(value) if isinstance(value, set) else frozenset.__iter__(value)), export, depth)
    if name.startswith("numpy.") and hasattr(value, "tolist"):
        return encode(value.tolist(), export, depth)
    return export(value)


def _enc_fraction(v, export, d):
    return {"t": "Fraction", "v": [encode(int(v.numerator), export, d), encode(int(v.denominator), export, d)]}


def _enc_decimal(v, export, d):
    return {"t": "Decimal", "v": str(v)}


def _enc_iso(tag):
    return lambda v, export, d: {"t": tag, "v": v.isoformat()}


def _enc_timedelta(v, export, d):
    return {"t": "timedelta", "v": [v.days, v.seconds, v.microseconds]}


def _enc_items(tag):
    return lambda v, export, d: {"t": tag, "v": [[encode(k, export, d), encode(x, export, d)] for k, x in dict.items(v)]}


def _enc_deque(v, export, d):
    return {"t": "deque", "v": [encode(x, export, d) for x in v]}


_BY_NAME = {
    "fractions.Fraction": _enc_fraction,
    "decimal.Decimal": _enc_decimal,
    "datetime.date": _enc_iso("date"),
    "datetime.datetime": _enc_iso("datetime"),
    "datetime.time": _enc_iso("time"),
    "datetime.timedelta": _enc_timedelta,
    "collections.OrderedDict": _enc_items("OrderedDict"),
    "collections.Counter": _enc_items("Counter"),
    "collections.defaultdict": _enc_items("dict"),
    "collections.deque": _enc_deque,
}


def decode(tagged, resolve, depth=0):
    """The value of `encode`'s output; `resolve(tag)` turns a handle tag into an object."""
    if tagged is None or type(tagged) in (bool, int, float, str):
        return tagged
    if depth > MAX_DEPTH:
        raise ChannelClosed("value nested too deeply")
    d = depth + 1
    if type(tagged) is list:
        return [decode(v, resolve, d) for v in tagged]
    if type(tagged) is not dict:
        raise ChannelClosed(f"unexpected value {type(tagged).__name__}")
    tag, v = tagged.get("t"), tagged.get("v")
    if tag == "int":
        return int(v, 16)
    if tag == "float":
        return float.fromhex(v)
    if tag == "tuple":
        return tuple(decode(x, resolve, d) for x in v)
    if tag == "dict":
        return {decode(k, resolve, d): decode(x, resolve, d) for k, x in v}
    if tag == "set":
        return {decode(x, resolve, d) for x in v}
    if tag == "frozenset":
        return frozenset(decode(x, resolve, d) for x in v)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "bytearray":
        return bytearray.fromhex(v)
    if tag == "complex":
        return complex(decode(v[0], resolve, d), decode(v[1], resolve, d))
    if tag == "range":
        return range(int(v[0]), int(v[1]), int(v[2]))
    if tag == "Fraction":
        from fractions import Fraction

        return Fraction(int(decode(v[0], resolve, d)), int(decode(v[1], resolve, d)))
    if tag == "Decimal":
        from decimal import Decimal

        return Decimal(str(v))
    if tag in ("date", "datetime", "time"):
        import datetime

        return getattr(datetime, tag).fromisoformat(str(v))
    if tag == "timedelta":
        import datetime

        return datetime.timedelta(days=int(v[0]), seconds=int(v[1]), microseconds=int(v[2]))
    if tag in ("OrderedDict", "Counter"):
        import collections

        return getattr(collections, tag)({decode(k, resolve, d): decode(x, resolve, d) for k, x in v})
    if tag == "deque":
        import collections

        return collections.deque(decode(x, resolve, d) for x in v)
    if tag in ("h", "r"):
        return resolve(tagged)
    raise ChannelClosed(f"unknown value tag {tag!r}")


def encode_exception(exc):
    return {"n": type(exc).__name__, "m": str(exc)[:500]}


_SAFE_EXCEPTIONS = {name: obj for name, obj in vars(builtins).items() if isinstance(obj, type) and issubclass(obj, Exception)}


def decode_exception(info):
    cls = _SAFE_EXCEPTIONS.get(str(info.get("n")), CandidateError)
    message = str(info.get("m", ""))
    try:
        return cls(message) if cls is not CandidateError else CandidateError(f"{info.get('n')}: {message}")
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
        return CandidateError(f"{info.get('n')}: {message}")


# ---------------------------------------------------------------------------------------------
# The candidate's side: serve requests against the completion's namespace.


class CandidateServer:
    def __init__(self, sock, namespace):
        self.sock = sock
        self.ns = namespace
        self.objects = {}

    def _export(self, obj):
        key = len(self.objects) + 1
        self.objects[key] = obj
        return {"t": "h", "v": key, "c": callable(obj), "n": type(obj).__qualname__}

    def _resolve(self, tag):
        if tag["t"] == "h":
            return self.objects[int(tag["v"])]
        return DriverCallable(self, int(tag["v"]), bool(tag.get("c")))

    def enc(self, value):
        return encode(value, self._export)

    def dec(self, value):
        return decode(value, self._resolve)

    def handle(self, msg):
        """(result, what the arguments became) of one request."""
        kind = msg[0]
        if kind == "get":
            if msg[1] not in self.ns:
                raise NameError(f"name {msg[1]!r} is not defined")
            return self.ns[msg[1]], None
        if kind == "call":
            fn = self.objects[msg[1]]
            args, kwargs = self.dec(msg[2]), self.dec(msg[3])
            result = fn(*args, **kwargs)
            # Lists, dicts and sets the test passed in may have been changed in place.
            return result, [self.enc(a) if type(a) in (list, dict, set, bytearray) else None for a in args]
        if kind == "attr":
            return getattr(self.objects[msg[1]], msg[2]), None
        if kind == "setattr":
            setattr(self.objects[msg[1]], msg[2], self.dec(msg[3]))
            return None, None
        if kind == "op":
            return _OPS[msg[1]](self.objects[msg[2]], *self.dec(msg[3])), None
        raise ChannelClosed(f"unknown request {kind!r}")

    def serve_one(self, msg):
        try:
            result, args = self.handle(msg)
            reply = ["ok", ["ret", self.enc(result), args]]
        except BaseException as exc:  # noqa: BLE001 - the completion's failure is the test's result
            reply = ["err", encode_exception(exc)]
        send(self.sock, reply)

    def serve_forever(self):
        while True:
            self.serve_one(recv(self.sock))

    def request(self, msg):
        """A call back into the driver (a test's function passed as an argument)."""
        send(self.sock, msg)
        while True:
            reply = recv(self.sock)
            if reply[0] == "ok":
                return self.dec(reply[1])
            if reply[0] == "err":
                raise decode_exception(reply[1])
            self.serve_one(reply)


class DriverCallable:
    """A test's function or class, in the candidate: it can be called, nothing else."""

    __slots__ = ("_server", "_key", "_callable")

    def __init__(self, server, key, can_call):
        self._server, self._key, self._callable = server, key, can_call

    def __call__(self, *args, **kwargs):
        if not self._callable:
            raise TypeError("this object of the test cannot be called from the solution")
        return self._server.request(["rcall", self._key, self._server.enc(list(args)), self._server.enc(kwargs)])

    def __repr__(self):
        return "<test object>"


def _ops():
    import operator

    table = {
        name: getattr(operator, name)
        for name in (
            "add",
            "sub",
            "mul",
            "truediv",
            "floordiv",
            "mod",
            "pow",
            "matmul",
            "lshift",
            "rshift",
            "and_",
            "or_",
            "xor",
            "neg",
            "pos",
            "invert",
            "getitem",
            "setitem",
            "delitem",
            "contains",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "index",
        )
    }
    table.update(
        {
            "len": len,
            "str": str,
            "repr": repr,
            "bool": bool,
            "hash": hash,
            "iter": iter,
            "next": next,
            "abs": abs,
            "int": int,
            "float": float,
            "round": round,
            "isinstance": lambda cls, instance: isinstance(instance, cls),
        }
    )
    table.update(
        {
            "r" + name: (lambda fn: lambda a, b: fn(b, a))(getattr(operator, name))
            for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul")
        }
    )
    return table


_OPS = _ops()


# ---------------------------------------------------------------------------------------------
# The driver's side.


class Driver:
    def __init__(self, sock, strict=False):
        self.sock = sock
        self.strict = strict
        self.exported = {}

    def _export(self, obj):
        key = len(self.exported) + 1
        self.exported[key] = obj
        return {"t": "r", "v": key, "c": _test_callable(obj)}

    def enc(self, value):
        def export(obj):
            if isinstance(obj, Handle):
                return {"t": "h", "v": obj._key}
            return self._export(obj)

        return encode(value, export)

    def _resolve(self, tag):
        if tag["t"] == "h":
            return Handle(self, int(tag["v"]), bool(tag.get("c")), str(tag.get("n", "object")))
        key = int(tag["v"])
        if key not in self.exported:
            raise ChannelClosed("the candidate named a driver object it was never given")
        return self.exported[key]

    def dec(self, value):
        return decode(value, self._resolve)

    def request(self, msg):
        send(self.sock, msg)
        while True:
            reply = recv(self.sock)
            if not isinstance(reply, list) or not reply:
                raise ChannelClosed("malformed reply")
            if reply[0] == "ok":
                if not (isinstance(reply[1], list) and len(reply[1]) == 3 and reply[1][0] == "ret"):
                    raise ChannelClosed("malformed reply")
                return reply[1]
            if reply[0] == "err":
                raise decode_exception(reply[1] if isinstance(reply[1], dict) else {})
            if reply[0] == "rcall":
                self._serve_callback(reply)
                continue
            raise ChannelClosed(f"unexpected message {str(reply[0])[:40]!r}")

    def _serve_callback(self, msg):
        try:
            fn = self.exported.get(int(msg[1]))
            if fn is None or not _test_callable(fn):
                raise TypeError("not a callable of the test")
            result = ["ret", self.enc(fn(*self.dec(msg[2]), **self.dec(msg[3]))), None]
            reply = ["ok", result]
        except ChannelClosed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the candidate as its callback's error
            reply = ["err", encode_exception(exc)]
        send(self.sock, reply)

    def value(self, msg):
        if self.strict and msg[0] not in ("get", "call"):
            raise TypeError("the solution returned an object, not a value")
        return self.dec(self.request(msg)[1])

    def get(self, name):
        return self.value(["get", name])


def _test_callable(obj):
    """Only functions and classes written in the test code may be called back by the candidate."""
    import types

    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename == TEST_FILE
    if isinstance(obj, type):
        return getattr(obj, "__module__", None) == "__test__"
    return False


def _forward(op):
    def method(self, *args):
        return self._driver.value(["op", op, self._key, self._driver.enc(list(args))])

    method.__name__ = f"__{op.rstrip('_')}__"
    return method


def _forward_between_handles(op):
    def method(self, other):
        if not isinstance(other, Handle):
            return NotImplemented
        return self._driver.value(["op", op, self._key, self._driver.enc([other])])

    method.__name__ = f"__{op.rstrip('_')}__"
    return method


def _compare(op):
    def method(self, other):
        # Only the candidate's own objects compare by the candidate's rules; against a value the
        # test wrote, a handle is never equal (nor ordered), whatever its __eq__ says.
        if not isinstance(other, Handle):
            return NotImplemented
        return self._driver.value(["op", op, self._key, self._driver.enc([other])])

    return method


class Handle:
    """An object of the completion (an instance, a function, a class), seen from the driver."""

    __slots__ = ("_driver", "_key", "_callable", "_type")

    def __init__(self, driver, key, can_call, typename):
        object.__setattr__(self, "_driver", driver)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_callable", can_call)
        object.__setattr__(self, "_type", typename)

    def __call__(self, *args, **kwargs):
        ret = self._driver.request(["call", self._key, self._driver.enc(list(args)), self._driver.enc(kwargs)])
        result = self._driver.dec(ret[1])
        for arg, new in zip(args, ret[2] or ()):
            if new is not None and type(arg) in (list, dict, set, bytearray):
                _copy_back(arg, self._driver.dec(new))
        return result

    def __getattr__(self, name):
        return self._driver.value(["attr", self._key, name])

    def __setattr__(self, name, value):
        self._driver.value(["setattr", self._key, name, self._driver.enc(value)])

    def __hash__(self):
        return self._driver.value(["op", "hash", self._key, []])

    def __bool__(self):
        return self._driver.value(["op", "bool", self._key, []]) is True

    def __len__(self):
        return self._driver.value(["op", "len", self._key, []])

    def __iter__(self):
        it = self._driver.value(["op", "iter", self._key, []])
        while True:
            try:
                yield self._driver.value(["op", "next", it._key, []])
            except StopIteration:
                return

    def __str__(self):
        return str(self._driver.value(["op", "str", self._key, []]))

    def __repr__(self):
        return str(self._driver.value(["op", "repr", self._key, []]))

    def __instancecheck__(self, instance):
        return self._driver.value(["op", "isinstance", self._key, self._driver.enc([instance])]) is True

    __eq__ = _compare("eq")
    __ne__ = _compare("ne")
    __lt__ = _compare("lt")
    __le__ = _compare("le")
    __gt__ = _compare("gt")
    __ge__ = _compare("ge")


for _op in ("neg", "pos", "invert", "getitem", "setitem", "delitem", "abs", "int", "float", "round", "index"):
    setattr(Handle, f"__{_op.rstrip('_')}__", _forward(_op))
for _op in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "lshift",
    "rshift",
    "and_",
    "or_",
    "xor",
    "radd",
    "rsub",
    "rmul",
    "rtruediv",
    "rfloordiv",
    "rmod",
    "rpow",
    "rmatmul",
):
    setattr(Handle, f"__{_op.rstrip('_')}__", _forward_between_handles(_op))
del _op


def _contains(self, item):
    # `in` reads any result as a truth value, so refuse instead of returning NotImplemented.
    if not isinstance(item, Handle):
        raise TypeError("`value in object-of-the-solution` is not forwarded: it would hand the expected value to the solution")
    return self._driver.value(["op", "contains", self._key, self._driver.enc([item])]) is True


Handle.__contains__ = _contains


def _copy_back(target, value):
    if type(target) is list and type(value) is list:
        target[:] = value
    elif type(target) is dict and type(value) is dict:
        target.clear()
        target.update(value)
    elif type(target) is set and type(value) is set:
        target.clear()
        target.update(value)
    elif type(target) is bytearray and type(value) is bytearray:
        target[:] = value


class TestNames(dict):
    """The test's builtins: Python's own first, then names the completion defines (fetched on use)."""

    def __init__(self, driver, base):
        super().__init__(base)
        self._driver = driver

    def __missing__(self, name):
        value = self._driver.get(name)  # raises NameError (from the candidate) when it is not there
        if isinstance(value, Handle):
            self[name] = value
        return value
