"""A real Mosquitto broker and a QoS 1 subscriber (tests, benches, the virtual field) on 127.0.0.1, a free port.

    broker = Mosquitto(tmp_path); sub = Subscriber(broker.port, "fieldline/#")   # users={"gw": "pw"}: no anonymous
    ...; broker.stop(); broker.start(); sub.wait_for(3, timeout_s=5); sub.close(); broker.close()

``make_certs(dir)`` makes a throw-away CA, a server certificate for 127.0.0.1/localhost and a
client certificate with the ``openssl`` CLI; ``Mosquitto(tmp, tls=certs)`` then listens with TLS.
``pause()``/``resume()`` freeze it (a hung upstream) and ``kill()`` cuts every connection at once.
The broker never drops QoS 1 messages to a subscriber (unlimited queue and in-flight window), so
a test can push a whole backlog through it and count what arrives.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt

MOSQUITTO = shutil.which("mosquitto", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
OPENSSL = shutil.which("openssl")
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- certificates ----

_SERVER_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
)
_CLIENT_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
)
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args, cwd):
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), done.stderr))


def _signed_cert(d, name, cn, ext):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("req", *_EC, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    _openssl(
        "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext", cwd=d,
    )  # fmt: skip


def make_certs(directory):
    """CA, server (SAN IP:127.0.0.1, DNS:localhost) and client certificates in ``directory``.

    Returns {"ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key"} (paths).
    Two calls on two directories give two unrelated CAs (for "wrong CA" tests).
    """
    if OPENSSL is None:
        raise RuntimeError("the openssl CLI is not installed (bootstrap.py installs it)")
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    _openssl(
        "req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=Fieldline test CA %s" % uuid.uuid4().hex[:8],
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d,
    )  # fmt: skip
    _signed_cert(d, "server", "localhost", _SERVER_EXT)
    _signed_cert(d, "client", "fieldline-test-client", _CLIENT_EXT)
    p = lambda name: os.path.join(d, name)
    return {
        "ca": p("ca.crt"),
        "ca_key": p("ca.key"),
        "server_cert": p("server.crt"),
        "server_key": p("server.key"),
        "client_cert": p("client.crt"),
        "client_key": p("client.key"),
    }


def client_tls_context(certs, client_cert=True):
    """An SSLContext that trusts ``certs["ca"]`` (and presents the client certificate)."""
    ctx = ssl.create_default_context(cafile=certs["ca"])
    if client_cert:
        ctx.load_cert_chain(certs["client_cert"], certs["client_key"])
    return ctx


# ---- the broker ----


class Mosquitto:
    """A mosquitto process on 127.0.0.1:``port``; ``stop()``/``start()`` keep the port (an outage)."""

    def __init__(self, tmpdir, tls=None, require_certificate=False, users=None, persistence=False):
        if MOSQUITTO is None:
            raise RuntimeError("the mosquitto binary is not installed (bootstrap.py installs it)")
        self.dir = os.fspath(tmpdir)
        self.tls = tls
        self.port = free_port()
        self.conf_path = os.path.join(self.dir, "mosquitto-%d.conf" % self.port)
        self.log_path = os.path.join(self.dir, "mosquitto-%d.log" % self.port)
        self._proc = None
        self.persistence = persistence  # True: sessions and queued messages survive stop()/start()
        self._write_conf(require_certificate, users)
        self.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("mqtts" if self.tls else "mqtt", self.port)

    def _write_conf(self, require_certificate, users):
        lines = [
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous %s" % ("false" if users else "true"),
            "persistence %s" % ("true" if self.persistence else "false"),
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if self.persistence:
            lines += ["persistence_location " + self.dir + "/", "autosave_interval 0"]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to user "mosquitto" and cannot read tmp files
        if users:
            lines.append("password_file " + self._password_file(users))
        if self.tls:
            lines += ["cafile " + self.tls["ca"], "certfile " + self.tls["server_cert"]]
            lines += ["keyfile " + self.tls["server_key"]]
            lines.append("require_certificate %s" % ("true" if require_certificate else "false"))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _password_file(self, users):
        """A mosquitto password file for {user: password} (hashed by mosquitto_passwd)."""
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            raise RuntimeError("mosquitto_passwd is not installed (it comes with mosquitto)")
        path = os.path.join(self.dir, "passwd-%d" % self.port)
        for i, (user, password) in enumerate(users.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run([tool, *create, "-b", path, user, password], check=True, capture_output=True, timeout=10)
        return path

    def log(self):
        """Everything mosquitto wrote so far (for failure messages)."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        """Start (or restart, on the same port) and wait until the port accepts connections."""
        if self._proc is not None and self._proc.poll() is None:
            return
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_path], stdout=log, stderr=log)
        self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    "mosquitto exited with %s; log %s:\n%s" % (self._proc.returncode, self.log_path, self.log())
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            "mosquitto did not listen on 127.0.0.1:%d within %.0f s; log %s:\n%s"
            % (self.port, START_TIMEOUT_S, self.log_path, self.log())
        )

    def stop(self):
        """Terminate the broker (clients see the connection drop); the port stays reserved for start()."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(STOP_TIMEOUT_S)

    def kill(self):
        """SIGKILL (works on a paused broker too): the kernel drops every client connection at once."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(STOP_TIMEOUT_S)

    def pause(self):
        """SIGSTOP: connections stay open but nothing is answered (a hung upstream)."""
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self._proc.send_signal(signal.SIGCONT)

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self.resume()
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- a subscriber that counts what arrives ----


class Subscriber:
    """A paho client subscribed at QoS 1 to ``topic``; ``messages`` is [(topic, qos, payload), ...]."""

    def __init__(self, port, topic="#", tls_context=None, timeout_s=5.0, persistent=False):
        """``persistent``: a durable session (clean_session off, fixed id, re-subscribed on every
        reconnect): with a broker that has persistence on, nothing published while this subscriber
        or the broker was down is lost to it -- how an upstream receiver listens."""
        self.messages = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topic = topic
        cid = "test-sub-" + uuid.uuid4().hex[:8]
        if persistent:
            self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
            self._client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self._topic, qos=1)
            self._client.reconnect_delay_set(0.1, 1.0)
        else:
            self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        if tls_context is not None:
            self._client.tls_set_context(tls_context)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.connect("127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        self._client.subscribe(topic, qos=1)
        if not self._subscribed.wait(timeout_s):
            self.close()
            raise RuntimeError("no SUBACK for %r from 127.0.0.1:%d within %.0f s" % (topic, port, timeout_s))

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, msg.qos, msg.payload))
            self._cond.notify_all()

    @property
    def payloads(self):
        with self._cond:
            return [m[2] for m in self.messages]

    def wait_for(self, n, timeout_s=5.0):
        """The payloads once at least ``n`` arrived; AssertionError saying how many did otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout_s):
                raise AssertionError(
                    "subscriber got %d of %d messages within %.1f s" % (len(self.messages), n, timeout_s)
                )
            return [m[2] for m in self.messages]

    def close(self):
        self._client.disconnect()
        self._client.loop_stop()
