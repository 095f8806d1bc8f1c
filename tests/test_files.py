"""Where vocalstream keeps what it builds."""

from vocalstream.files import cache_dir


def test_an_empty_cache_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("VOCALSTREAM_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "vocalstream"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "vocalstream"
    monkeypatch.setenv("VOCALSTREAM_CACHE", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"
