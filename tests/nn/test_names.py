import pytest

from lstmkit.nn.names import register_into, unknown_name


def test_register_into_refuses_duplicates():
    table = {}
    register_into(table, "widget", "a")(len)
    assert table == {"a": len}
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        register_into(table, "widget", "a")(str)


def test_unknown_name_message():
    e = unknown_name("widget", "alpah", ["alpha", "beta"], extra=", or x:NAME")
    assert str(e) == "unknown widget 'alpah'; did you mean 'alpha'? Valid: alpha, beta, or x:NAME"
    assert str(unknown_name("widget", "zzz", ["b", "a"])) == "unknown widget 'zzz'. Valid: a, b"
