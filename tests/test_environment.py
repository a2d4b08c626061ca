"""The hardware identity of a record: throughput is compared only between equal strings, so two CPUs
that report the same marketing name but dispatch torch to different instruction sets must differ."""

from pathlib import Path

import torch

from bench import environment


def test_cpu_hardware_names_the_instruction_set_and_the_thread_count():
    name = environment.hardware(torch.device("cpu"))
    assert name.startswith(f"cpu: {environment.cpu_model()} (")
    assert torch.backends.cpu.get_cpu_capability() in name
    assert name.endswith(f" x{torch.get_num_threads()} threads")


def test_cpu_identity_reads_the_first_processor_block(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
        "stepping\t: 2\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 9\nstepping\t: 0\n"
    )
    real_path = Path

    def fake_path(arg, *rest):
        return cpuinfo if arg == "/proc/cpuinfo" else real_path(arg, *rest)

    monkeypatch.setattr(environment, "Path", fake_path)
    assert environment.cpu_identity() == "family 23 model 1 stepping 2"


def test_two_instruction_sets_give_two_hardware_strings(monkeypatch):
    monkeypatch.setattr(environment, "cpu_capability", lambda: "AVX2")
    avx2 = environment.hardware(torch.device("cpu"))
    monkeypatch.setattr(environment, "cpu_capability", lambda: "AVX512")
    assert environment.hardware(torch.device("cpu")) != avx2


def test_the_record_environment_carries_the_capability():
    env = environment.environment(torch.device("cpu"))
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["hardware"] == environment.hardware(torch.device("cpu"))
