"""kube-apiserver's audit flag validation (reference/audit-semantics.md §5) and `flags validate`."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli
from kubeadm_audit import flags, versions


def check(**values):
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in values.items()]
    occurrences = flags.parse_command(argv)
    return flags.validate(flags.effective(occurrences), None, occurrences)


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def test_defaults_are_valid():
    assert errors(check(audit_policy_file="/p", audit_log_path="/l/a.log",
                        audit_webhook_config_file="/w")) == []


@pytest.mark.parametrize("values,flag", [
    ({"audit_log_maxage": "-1"}, "audit-log-maxage"),
    ({"audit_log_maxbackup": "-5"}, "audit-log-maxbackup"),
    ({"audit_log_format": "yaml"}, "audit-log-format"),
    ({"audit_log_mode": "Batch"}, "audit-log-mode"),
    ({"audit_log_mode": "batch", "audit_log_batch_throttle_enable": "true"},
     ["audit-log-batch-throttle-qps", "audit-log-batch-throttle-burst"]),
    ({"audit_log_truncate_max_event_size": "0"}, "audit-log-truncate-max-event-size"),
    ({"audit_log_truncate_max_batch_size": "100"}, "audit-log-truncate-max-batch-size"),
    ({"audit_log_version": "audit.k8s.io/v1beta1"}, "audit-log-version"),
    ({"audit_log_version": "v1"}, "audit-log-version"),
    ({"audit_log_maxage": "30d"}, "audit-log-maxage"),
    ({"audit_log_compress": "yes"}, "audit-log-compress"),
])
def test_log_backend_rules(values, flag):
    found = errors(check(audit_log_path="/var/log/a.log", **values))
    assert [p.path.removeprefix("--") for p in found] == ([flag] if isinstance(flag, str) else flag)


def test_disabled_backend_is_not_validated():
    assert errors(check(audit_log_maxage="-1", audit_log_format="yaml",
                        audit_webhook_mode="sometimes")) == []


@pytest.mark.parametrize("values,flag", [
    ({"audit_webhook_mode": "async"}, "audit-webhook-mode"),
    ({"audit_webhook_batch_max_size": "0"}, "audit-webhook-batch-max-size"),
    ({"audit_webhook_batch_buffer_size": "-1"}, "audit-webhook-batch-buffer-size"),
    ({"audit_webhook_batch_throttle_qps": "0"}, "audit-webhook-batch-throttle-qps"),
    ({"audit_webhook_batch_throttle_burst": "0"}, "audit-webhook-batch-throttle-burst"),
    ({"audit_webhook_batch_max_wait": "5"}, "audit-webhook-batch-max-wait"),
    ({"audit_webhook_initial_backoff": "ten"}, "audit-webhook-initial-backoff"),
    ({"audit_webhook_truncate_max_event_size": "-1"}, "audit-webhook-truncate-max-event-size"),
])
def test_webhook_backend_rules(values, flag):
    found = errors(check(audit_webhook_config_file="/w", **values))
    assert [p.path.removeprefix("--") for p in found] == [flag]


def test_batch_parameters_only_checked_in_batch_mode():
    assert errors(check(audit_webhook_config_file="/w", audit_webhook_mode="blocking",
                        audit_webhook_batch_max_size="0", audit_webhook_batch_throttle_qps="-1")) == []
    assert errors(check(audit_webhook_config_file="/w", audit_webhook_batch_throttle_enable="false",
                        audit_webhook_batch_throttle_qps="0")) == []


def test_truncate_limits_checked_even_when_truncation_is_off():
    found = errors(check(audit_webhook_config_file="/w", audit_webhook_truncate_enabled="false",
                         audit_webhook_truncate_max_event_size="200", audit_webhook_truncate_max_batch_size="100"))
    assert [p.path.removeprefix("--") for p in found] == ["audit-webhook-truncate-max-batch-size"]


def test_unknown_and_removed_flags_stop_kube_apiserver():
    found = errors(check(audit_dynamic_configuration="true", audit_log_maxagee="3"))
    assert {p.path.removeprefix("--") for p in found} == {"audit-dynamic-configuration", "audit-log-maxagee"}


@pytest.mark.parametrize("text,value", [("30", 30), ("0x1e", 30), ("036", 30), ("0o36", 30), ("3_0", 30),
                                        ("-0", 0), ("+7", 7)])
def test_go_integer_syntax(text, value):
    assert flags.parse_go_int(text) == value


@pytest.mark.parametrize("text", ["", "3.0", "30d", "0x", "1__0", "9223372036854775808"])
def test_go_integer_rejects(text):
    with pytest.raises(ValueError):
        flags.parse_go_int(text)


def test_last_occurrence_wins_and_duplicates_warn():
    argv = ["--audit-log-path=/a/a.log", "--audit-log-maxage=-1", "--audit-log-maxage=30"]
    occurrences = flags.parse_command(argv)
    problems = flags.validate(flags.effective(occurrences), None, occurrences)
    assert errors(problems) == []
    assert any("more than once" in p.message for p in problems)


def test_separate_value_form_is_read_but_warned_for_kube_bench():
    occurrences = flags.parse_command(["kube-apiserver", "--audit-log-maxage", "30", "--audit-log-path=/x/y"])
    assert flags.effective(occurrences)["audit-log-maxage"] == "30"
    problems = flags.validate(flags.effective(occurrences), None, occurrences)
    assert any("kube-bench only reads" in p.message for p in problems)


def test_throughput_warning_for_batch_size_one():
    problems = check(audit_webhook_config_file="/w", audit_webhook_batch_max_size="1")
    assert any("near 10 events/s" in p.message for p in problems)
    assert not any("events/s" in p.message for p in check(audit_webhook_config_file="/w",
                                                          audit_webhook_batch_max_size="1",
                                                          audit_webhook_batch_throttle_enable="false"))


def test_log_rotation_defaults_depend_on_the_version():
    assert versions.log_rotation_defaults(versions.parse("v1.35.3"))["audit-log-maxage"] == "0"
    assert versions.log_rotation_defaults(versions.parse("v1.36.0"))["audit-log-maxage"] == "366"


def test_cli_exit_codes_and_json():
    ok = run_cli("flags", "validate", "--", "--audit-policy-file=/p", "--audit-log-path=/l/a.log",
                 "--audit-log-maxage=30")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = run_cli("flags", "validate", "-o", "json", "--", "--audit-log-path=/l/a.log", "--audit-log-maxsize=-1")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["valid"] is False
    assert {"flag": "audit-log-maxsize", "severity": "error",
            "message": "--audit-log-maxsize -1 can't be a negative number"} in report["problems"]
    kubeadm_form = run_cli("flags", "validate", "audit-webhook-config-file=/w", "audit-webhook-mode=async")
    assert kubeadm_form.returncode == 1 and "invalid audit webhook mode async" in kubeadm_form.stdout
    for args in (["flags", "validate"], ["flags", "validate", "--"]):
        # no audit flags: kube-apiserver starts, without an audit backend (issue 11)
        empty = run_cli(*args)
        assert empty.returncode == 0 and "no audit backend" in empty.stdout, empty.stdout + empty.stderr
    missing = run_cli("flags", "validate", "-o", "json", "--", "--audit-log-path")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["problems"][0]["message"] == "flag needs an argument: --audit-log-path"


def test_event_versions_follow_the_kubernetes_version():
    """audit.k8s.io/v1alpha1 and v1beta1 were removed in 1.24; 1.22 and 1.23 still accept them."""
    def errors_for(kube, value):
        values = {"audit-log-path": "/a/a.log", "audit-log-version": value}
        return errors(flags.validate(values, versions.parse(kube)))

    assert errors_for("v1.23.17", "audit.k8s.io/v1beta1") == []
    assert errors_for("v1.23.17", "audit.k8s.io/v1") == []
    found = errors_for("v1.24.0", "audit.k8s.io/v1beta1")
    assert [p.path.removeprefix("--") for p in found] == ["audit-log-version"]
    assert found[0].message == 'invalid group version, allowed versions are ["audit.k8s.io/v1"]'


def test_cis_warnings_read_flags_the_way_kube_bench_does():
    base = {"audit-policy-file": "/p", "audit-log-path": "/l/a.log", "audit-log-maxage": "30",
            "audit-log-maxbackup": "10", "audit-log-maxsize": "100"}
    assert flags.cis_warnings(base) == []
    hex_age = flags.cis_warnings({**base, "audit-log-maxage": "0x1e"})   # kube-apiserver: 30; kube-bench: not a number
    assert [p.path.removeprefix("--") for p in hex_age] == ["audit-log-maxage"] and "CIS 1.2.17" in hex_age[0].message
    missing = flags.cis_warnings({k: v for k, v in base.items() if k != "audit-log-maxbackup"})
    assert [p.path.removeprefix("--") for p in missing] == ["audit-log-maxbackup"]
    assert "1.2.16" in flags.cis_warnings({"audit-policy-file": "/p"})[0].message


def test_maxsize_zero_means_no_rotation_from_1_36():
    values = {"audit-policy-file": "/p", "audit-log-path": "/l/a.log", "audit-log-maxsize": "0"}
    rotation = [p for p in flags.validate(values, versions.parse("v1.36.0")) if "rotation off" in p.message]
    assert rotation and rotation[0].severity == "warning"
    assert not [p for p in flags.validate(values, versions.parse("v1.35.0")) if "rotation off" in p.message]


@pytest.mark.parametrize("text", ["2562048h", "9999999999h", "9223372037s", "2562047h47m16.854775808s"])
def test_duration_beyond_int64_nanoseconds_is_invalid(text):
    """Found by the oracle (issue 11): time.ParseDuration refuses what overflows int64 ns."""
    with pytest.raises(ValueError, match="invalid duration"):
        flags.parse_go_duration(text)
    assert flags.parse_go_duration("-2562047h47m16.854775808s") < 0
    assert flags.parse_go_duration("2562047h") == 2562047 * 3600


def test_every_occurrence_is_parsed_not_only_the_last():
    """Found by the oracle (issue 11): pflag parses each occurrence, so an invalid earlier
    value stops kube-apiserver although the last one is valid."""
    argv = ["--audit-log-path=/a/a.log", "--audit-log-batch-buffer-size=", "--audit-log-batch-buffer-size=5"]
    occurrences = flags.parse_command(argv)
    found = errors(flags.validate(flags.effective(occurrences), None, occurrences))
    assert [p.path.removeprefix("--") for p in found] == ["audit-log-batch-buffer-size"]
    assert 'invalid argument ""' in found[0].message
