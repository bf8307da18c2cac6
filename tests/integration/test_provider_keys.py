"""Provider credentials read from a file (api-key file:PATH).

A credential file is used only when it is a regular file that nobody but
its owner can read or write (mode 0600 or stricter): a key others can read
has leaked already, and palyrad refuses to spread it further. The run of
an agent whose only provider has no usable key fails with a reason saying
so, and the log names the file (never its contents).
"""
import os
import secrets

import pytest

from conftest import Daemon, _require_binaries, run_stream, pb
import fakeprov

S = pb.RunStatus
GOOD_KEY = "sk-file-" + secrets.token_hex(16)
LOOSE_KEY = "sk-loose-" + secrets.token_hex(16)

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "strict" {{{{ type openai; base-url "@strict"; api-key file:@good; model "m" }}}}
provider "loose" {{{{ type openai; base-url "@loose"; api-key file:@loose; model "m" }}}}
tenant "default" {{{{
	agent "strict" {{{{ providers "strict" }}}}
	agent "loose" {{{{ providers "loose" }}}}
}}}}
"""


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    keys = tmp_path_factory.mktemp("keys")
    good, loose = keys / "good.key", keys / "loose.key"
    good.write_text(GOOD_KEY + "\n")
    good.chmod(0o600)
    loose.write_text(LOOSE_KEY + "\n")
    loose.chmod(0o600)
    conf = (CONFIG.replace('"@strict"', f'"{fp.url("strict")}"')
            .replace('"@loose"', f'"{fp.url("loose")}"')
            .replace("@good", str(good)).replace("@loose", str(loose)))
    d = Daemon(tmp_path_factory.mktemp("pk"), conf.format(), ("default",))
    d.start()
    # palyrad refuses to start with a key file others may read
    # (test_unsafe_config.py); one loosened later, before the worker that
    # would get it starts, is still refused where it is read.
    loose.chmod(0o644)
    yield d
    if not d.stopped:
        d.kill()


def final_status(res):
    st = [e.status for e in res.events if e.WhichOneof("event") == "status"]
    return st[-1] if st else None


def test_key_file_0600_is_used(daemon, fp):
    tok = daemon.mint_token("default", "alice")
    res = run_stream(daemon.channel, tok, input="fp:text n=3 tag=strict",
                     agent="strict", timeout=30)
    assert final_status(res).status == S.RUN_STATUS_COMPLETED, res
    ents = fp.entries("strict")
    assert ents, "palyrad never called the provider"
    assert ents[-1].headers.get("authorization") == f"Bearer {GOOD_KEY}"


def test_key_file_readable_by_others_is_refused(daemon, fp):
    tok = daemon.mint_token("default", "bob")
    res = run_stream(daemon.channel, tok, input="fp:text n=3 tag=loose",
                     agent="loose", timeout=30)
    st = final_status(res)
    assert st is not None and st.status == S.RUN_STATUS_FAILED, res
    assert "api-key" in st.reason, st.reason
    assert LOOSE_KEY not in st.reason
    # The key never went out, and the log says why, naming only the file.
    assert all(e.headers.get("authorization") != f"Bearer {LOOSE_KEY}"
               for e in fp.entries("loose"))
    log = daemon.log_text()
    assert "loose.key must be a regular file" in log, log[-2000:]
    assert LOOSE_KEY not in log
