"""Runs the PyKMIP server (what the `pykmip-server` script runs) so that none of its processes
outlives it.

The server forks helper processes (a multiprocessing.Manager for its policies and the policy
directory monitor). The test harness gives the server PR_SET_PDEATHSIG, but the kernel clears
that setting in forked children: killed alone, the server would leave both helpers running.
Every child forked here gets PR_SET_PDEATHSIG = SIGKILL again, so it dies with the server.
Arguments are those of `pykmip-server` (e.g. -f server.conf -l server.log).
"""

import ctypes
import multiprocessing
import os
import signal
import sys
import warnings

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_parent = os.getpid()


def _remember_parent():
    global _parent
    _parent = os.getpid()


def _die_with_parent():
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(1)
    if os.getppid() != _parent:  # the server died before the death signal was armed
        os._exit(1)


def main():
    os.register_at_fork(before=_remember_parent, after_in_child=_die_with_parent)
    # Newer Pythons default to "forkserver", whose server would be started by exec and miss
    # the hook above.
    multiprocessing.set_start_method("fork")
    # PyKMIP 0.11.0 still names ciphers that cryptography moved to `decrepit`.
    warnings.filterwarnings("ignore", message=".*has been moved to cryptography.hazmat.decrepit")
    from kmip.services.server import server

    sys.argv[0] = "pykmip-server"
    server.main()


if __name__ == "__main__":
    main()
