"""A private network namespace for the whole e2e test process.

Asterisk never offers a loopback ICE candidate (127.0.0.0/8 is skipped before any setting is read), so a
browser talking to an Asterisk on this host needs a media address that is not 127.x. The tests give one to
the loopback device of a network namespace of their own: the address, and every packet the tests send,
exist only there; the host's interfaces are neither seen nor touched. Everything the tests start later
(Asterisk, the controller, PostgreSQL, chromium) inherits the namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess

MEDIA_ADDRESS = "10.111.0.1"

CLONE_NEWNET = 0x40000000


class NamespaceError(RuntimeError):
    pass


def enter_private_namespace() -> int:
    """Move this process into a new network namespace with `lo` up and MEDIA_ADDRESS/32 on it.

    Returns a file descriptor on the namespace the process came from (the host's), kept open so a test
    can look at the host side and prove nothing leaked there.
    """
    if os.geteuid() != 0:
        raise NamespaceError("the e2e tests need root: they create a private network namespace (unshare)")
    # A namespace belongs to a thread, not a process: with other threads alive they would stay behind on
    # the host, and so would every thread and child they start.
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise NamespaceError(f"the process has {threads} threads; unshare(CLONE_NEWNET) needs exactly one")
    host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        os.close(host)
        raise NamespaceError(f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)}")
    for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{MEDIA_ADDRESS}/32", "dev", "lo"]):
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            raise NamespaceError(f"{' '.join(command)} failed: {out.stderr.strip()}")
    return host
