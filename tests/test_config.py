"""Config: defaults load, user files and flags override, and errors name file, key and expectation."""

from __future__ import annotations

import pytest

from orchestrator.config import load_config, parse_set
from tests.conftest import creature
from track2_voice.common.errors import ConfigError


def test_defaults_load_and_match_the_models():
    cfg = load_config()
    assert cfg.voice.backend == "replay"
    assert cfg.voice.lipsync.floor_db < cfg.voice.lipsync.ceil_db
    assert cfg.voice.mlx.hf_repo == "kyutai/moshiko-mlx-q4"


def test_user_file_and_flags_override_in_order(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("voice:\n  backend: mlx\n  lipsync:\n    floor_db: -60\n")
    cfg = load_config(user, parse_set(["voice.lipsync.floor_db=-55"]))
    assert cfg.voice.backend == "mlx"
    assert cfg.voice.lipsync.floor_db == -55
    assert cfg.voice.lipsync.ceil_db == -30  # untouched default


def test_unknown_key_names_file_key_and_choices(tmp_path):
    user = tmp_path / "typo.yaml"
    user.write_text("voice:\n  lipsync:\n    atack_ms: 10\n")
    with pytest.raises(ConfigError) as e:
        load_config(user)
    msg = str(e.value)
    assert str(user) in msg
    assert "voice.lipsync.atack_ms" in msg
    assert "attack_ms" in msg  # the keys it expected


def test_wrong_type_from_the_command_line_is_named():
    with pytest.raises(ConfigError) as e:
        load_config(None, {"voice.lipsync.floor_db": "loud"})
    msg = str(e.value)
    assert "command line (voice.lipsync.floor_db)" in msg
    assert "valid number" in msg and "'loud'" in msg


def test_cross_field_rule_is_explained(tmp_path):
    user = tmp_path / "range.yaml"
    user.write_text("voice:\n  lipsync:\n    floor_db: -20\n    ceil_db: -30\n")
    with pytest.raises(ConfigError, match="ceil_db .* must be above floor_db"):
        load_config(user)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("voice: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_cli_reports_a_bad_key_in_one_line_and_exit_code_2(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("voice:\n  backend: gpu\n")
    r = creature("config", "--config", str(user))
    assert r.returncode == 2
    assert "voice.backend" in r.stderr and "'gpu'" in r.stderr and str(user) in r.stderr
    assert "Traceback" not in r.stderr


def test_every_config_key_is_documented():
    from orchestrator.cli.config_docs import all_keys
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "config.md").read_text()
    missing = [k for k in all_keys() if f"`{k}`" not in doc]
    assert not missing, f"regenerate docs/config.md with `creature config --docs`: {missing}"


def test_the_shown_config_hides_credentials_in_urls():
    from orchestrator.config import dump_config

    cfg = load_config(
        None,
        parse_set(
            [
                "voice.remote.url=wss://gpu.example:8998/api/chat?token=s3cr3t&text_topk=5",
                "slow_loop.webhook.url=https://u:pw@hook.example/in?sig=abc",
            ]
        ),
    )
    shown = dump_config(cfg)
    assert "s3cr3t" not in shown and ":pw@" not in shown and "sig=abc" not in shown
    assert "url: wss://gpu.example:8998/api/chat?token=***&text_topk=5" in shown
    assert "url: https://u:***@hook.example/in?sig=***" in shown
    assert "token=s3cr3t" in cfg.voice.remote.url  # what connects is untouched


def _float_keys():
    """Every float config key, from the models (so a settings class added later is covered)."""
    from orchestrator.cli.config_docs import all_keys

    cfg = load_config()
    for key in all_keys():
        node = cfg
        for part in key.split("."):
            node = getattr(node, part, None)
        if isinstance(node, float):
            yield key


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_no_float_setting_takes_nan_or_infinity(value):
    """A NaN floor keeps the mouth shut without an error: every settings class refuses it (a
    copy of the strict policy without allow_inf_nan=False took face.visemes.gate_db=nan)."""
    keys = list(_float_keys())
    assert "face.visemes.gate_db" in keys and len(keys) > 40
    taken = []
    for key in keys:
        try:
            load_config(overrides={key: value})
        except ConfigError:
            continue
        taken.append(key)
    assert not taken, f"took {value}: {taken}"
