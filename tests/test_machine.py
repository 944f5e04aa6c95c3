"""The machine facts printed beside every measured figure."""
from resnet_course import machine


def test_simd_features_name_the_vector_units_that_set_the_speed(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags",
                        lambda: {"sse2", "fma", "avx2", "avx512_bf16", "avx512f"})
    assert machine.simd_features() == "avx2 fma avx512f avx512_bf16"
    assert machine.has_native_bfloat16() is True
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"sse2", "fma", "avx2"})
    assert machine.simd_features() == "avx2 fma"
    assert machine.has_native_bfloat16() is False


def test_unknown_cpu_flags_say_so(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", set)
    assert machine.simd_features() == "unknown"
    assert machine.has_native_bfloat16() is None


def test_machine_line_names_the_simd_features():
    assert f"({machine.simd_features()})" in machine.machine_line()


def test_cpu_model_gives_the_family_and_model_that_tell_generations_apart(tmp_path):
    first = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(first + "\n" + first.replace("26", "25"))
    assert machine.cpu_model(cpuinfo) == "AMD EPYC, family 26 model 2"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert machine.cpu_model(cpuinfo) == "Some CPU"
