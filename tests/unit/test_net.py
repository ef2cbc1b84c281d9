import socket

from streams.net import _ephemeral_range, free_port


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    low, _ = _ephemeral_range()
    assert all(p < low for p in ports)  # none an outgoing connection could be holding


def test_a_preferred_port_is_given_when_free_and_replaced_when_taken() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        assert free_port(taken) != taken
    wanted = free_port()  # free now, but already handed out: a second caller gets another
    assert free_port(wanted) != wanted
