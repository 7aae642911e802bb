"""The built-in views: csysdig's everyday ones, column for column where ktrace has the field.

Columns marked ``containers_only`` appear with -pc. Differences from csysdig, and why:
``procs_errors`` and ``errors`` only look at failed calls (csysdig scans every event to show
processes with no error as zeros); ``io_by_type`` only counts I/O calls (csysdig counted every
event with an fd); ``procs_cpu`` shows the total CPU only (the CPU samples are kept as one
figure per thread); ``files``' OPENS counts the exits of every open family call.
"""

from __future__ import annotations

from typing import Final

from .spec import Column, ViewSpec

# What a view can be drilled into with (csysdig's applies_to), by family.
_PROC_KEYS: Final = ("container.id", "proc.pid", "proc.name", "thread.tid", "k8s.pod.id", "k8s.ns.name")
_FD_KEYS: Final = ("fd.name", "fd.containername", "fd.directory", "fd.containerdirectory", "fd.sport", "fd.type")
_ALL_KEYS: Final = _PROC_KEYS + _FD_KEYS + ("evt.type", "evt.res")

NET_FDS: Final = "(fd.type=ipv4 or fd.type=ipv6) and fd.name!=''"
FILE_FDS: Final = "(fd.type=file or fd.type=directory) and fd.name!=''"
OPEN_EXITS: Final = "evt.type in (open, openat, openat2, creat) and evt.dir=<"

PID = Column("PID", "proc.pid", units="count", desc="Process id.")
VPID = Column("VPID", "proc.vpid", units="count", desc="Process id as seen in its container.", containers_only=True)
CPU = Column("CPU", "thread.cpu", "cpu", "pct", "CPU use, percent of one CPU.")
VIRT = Column("VIRT", "thread.vmsize.b", "max", "bytes", "Virtual memory size.")
RES = Column("RES", "thread.vmrss.b", "max", "bytes", "Resident memory.")
FILE = Column("FILE", "evt.buflen.file", "time_avg", "bytes/s", "File bytes read and written per second.")
NET = Column("NET", "evt.buflen.net", "time_avg", "bytes/s", "Network bytes read and written per second.")
CONTAINER = Column("CONTAINER", "container.name", desc="Container name.", containers_only=True)
COMMAND = Column("Command", "proc.exeline", desc="The command line.")
TIME = Column("TIME", "evt.time", desc="When the event happened.")
BPS_IN = Column("BPS IN", "evt.buflen.net.in", "time_avg", "bytes/s", "Bytes read per second.")
BPS_OUT = Column("BPS OUT", "evt.buflen.net.out", "time_avg", "bytes/s", "Bytes written per second.")


def _fs_columns(name_header: str, name_field: str) -> tuple[Column, ...]:
    return (
        Column("BYTES IN", "evt.buflen.file.in", "sum", "bytes", "Bytes read."),
        Column("BYTES OUT", "evt.buflen.file.out", "sum", "bytes", "Bytes written."),
        Column("OPS", "evt.count.exit", "sum", "count", "I/O and other calls on it."),
        Column("OPENS", "evt.count", "sum", "count", "Times it was opened.", where=OPEN_EXITS),
        Column("ERRORS", "evt.count.error", "sum", "count", "Failed calls on it."),
        Column("Container", "container.name", containers_only=True),
        Column(name_header, name_field),
    )


def _k8s(view_id: str, name: str, key: str, cols: tuple[Column, ...], drill: str, applies: tuple[str, ...]
         ) -> ViewSpec:
    return ViewSpec(
        id=view_id, name=name, key=key, filter=f"{key} != ''", sort="CPU", drilldown=drill, applies_to=applies,
        description=f"{name}: CPU, memory, file and network use of their processes (from the container metadata).",
        columns=(CPU, VIRT, RES, FILE, NET, *cols),
    )


BUILTIN_VIEWS: Final[tuple[ViewSpec, ...]] = (
    ViewSpec(
        id="procs", name="Processes", root=True, key="proc.pid", filter="evt.type!=switch", sort="CPU",
        drilldown="threads", applies_to=("container.id", "fd.name", "fd.containername", "fd.sport", "evt.type",
                                         "fd.directory", "fd.containerdirectory", "fd.type", "k8s.pod.id",
                                         "k8s.ns.name"),
        description=("Top-like view of the processes: CPU, memory, and the bytes they read and write on files "
                     "and the network, per second. The default view."),
        columns=(PID, Column("PPID", "proc.ppid", units="count", desc="Parent process id."), VPID, CPU,
                 Column("USER", "user.name", desc="User name."),
                 Column("TH", "proc.nthreads", "max", "count", "Threads of the process."),
                 VIRT, RES, FILE, NET, CONTAINER, COMMAND),
    ),
    ViewSpec(
        id="procs_cpu", name="Processes CPU", root=True, key="proc.pid", filter="evt.type!=switch", sort="TOT",
        drilldown="threads", applies_to=("container.id", "fd.name", "fd.containername", "fd.sport", "evt.type",
                                         "fd.directory", "fd.containerdirectory", "fd.type", "k8s.pod.id"),
        description="Processes by CPU use, with their system call rate.",
        columns=(PID, VPID, Column("TOT", "thread.cpu", "cpu", "pct", "CPU use, percent of one CPU."),
                 Column("SYSCALLS", "evt.count", "time_avg", "rate", "System calls (enter and exit) per second."),
                 CONTAINER, COMMAND),
    ),
    ViewSpec(
        id="threads", name="Threads", root=True, key="thread.tid", filter="evt.type!=switch", sort="CPU",
        drilldown="files", applies_to=("proc.pid", "proc.name", "container.id", "fd.sport", "fd.name",
                                       "fd.containername", "fd.directory", "fd.containerdirectory", "evt.res",
                                       "k8s.pod.id", "k8s.ns.name"),
        description="Top-like view of the threads: CPU and the file and network bytes they move per second.",
        columns=(PID, Column("TID", "thread.tid", units="count", desc="Thread id."), VPID,
                 Column("VTID", "thread.vtid", units="count", desc="Thread id in its container.", containers_only=True),
                 CPU, FILE, NET, Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    ViewSpec(
        id="containers", name="Containers", key="container.id", filter="container.name != host", sort="CPU",
        drilldown="procs", applies_to=("evt.res", "k8s.pod.id", "k8s.ns.name"),
        description="The containers: CPU, processes, threads, memory, file and network bytes per second.",
        columns=(CPU, Column("PROCS", "proc.pid", "distinct", "count", "Processes seen in the interval."),
                 Column("THREADS", "thread.tid", "distinct", "count", "Threads seen in the interval."),
                 VIRT, RES, FILE, NET, Column("ENGINE", "container.type"), Column("IMAGE", "container.image"),
                 Column("ID", "container.id"), Column("NAME", "container.name")),
    ),
    ViewSpec(
        id="connections", name="Connections", key="fd.name", container_key="fd.containername", filter=NET_FDS,
        sort="BPS IN", drilldown="incoming_connections",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.sport", "fd.type", "evt.res",
                    "k8s.pod.id", "k8s.ns.name"),
        description="Network connections: their ends, bytes read and written per second, I/O calls per second.",
        columns=(Column("L4PROTO", "fd.l4proto"), Column("LIP", "fd.lip"), Column("LPORT", "fd.lport", units="count"),
                 Column("RIP", "fd.rip"), Column("RPORT", "fd.rport", units="count"), BPS_IN, BPS_OUT,
                 Column("IOPS", "evt.count", "time_avg", "rate", "Calls on the connection per second."),
                 Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    ViewSpec(
        id="incoming_connections", name="New Connections", kind="list", key="evt.num",
        filter="evt.type in (accept, accept4) and evt.dir=< and evt.failed=false",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.name", "fd.containername",
                    "fd.sport", "k8s.pod.id", "k8s.ns.name"),
        description="Connections accepted, one line each.",
        columns=(TIME, Column("Connection", "fd.name"), Column("Container", "container.name", containers_only=True),
                 COMMAND),
    ),
    ViewSpec(
        id="sports", name="Server Ports", key="fd.sport", filter=NET_FDS, sort="BPS IN", drilldown="connections",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "evt.res", "k8s.pod.id", "k8s.ns.name"),
        description="Server ports: bytes read and written per second and I/O calls on each.",
        columns=(Column("SPORT", "fd.sport", units="count"), BPS_IN, BPS_OUT,
                 Column("IO CALLS", "evt.count", "sum", "count", "Calls on the port's sockets.")),
    ),
    ViewSpec(
        id="files", name="Files", key="fd.name", container_key="fd.containername", filter=FILE_FDS, sort="OPS",
        drilldown="procs", applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.sport",
                                       "fd.directory", "fd.containerdirectory", "evt.res", "k8s.pod.id"),
        description="Files: bytes read and written, calls, opens and errors.",
        columns=_fs_columns("FILENAME", "fd.name"),
    ),
    ViewSpec(
        id="directories", name="Directories", key="fd.directory", container_key="fd.containerdirectory",
        filter=FILE_FDS, sort="OPS", drilldown="files",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.sport", "evt.res", "k8s.pod.id"),
        description="Directories: bytes read and written in their files, calls, opens and errors.",
        columns=_fs_columns("DIRNAME", "fd.directory"),
    ),
    ViewSpec(
        id="file_opens", name="File Opens List", kind="list", key="evt.num", filter=OPEN_EXITS,
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.name", "fd.containername",
                    "fd.directory", "fd.containerdirectory", "evt.res", "k8s.pod.id"),
        description="Every file open, with its result.",
        columns=(TIME, Column("RES", "evt.res"), Column("FILE", "fd.name"),
                 Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    ViewSpec(
        id="slow_io", name="Slow File I/O", kind="list", key="evt.num", sort="LATENCY",
        filter="evt.is_io=true and fd.type=file and (not fd.name contains '/dev/') and evt.latency>1000000",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "k8s.pod.id"),
        description="File reads and writes that took more than 1 ms, slowest first.",
        columns=(TIME, Column("LATENCY", "evt.latency", "last", "time"), Column("FILENAME", "fd.name"),
                 Column("Container", "container.name", containers_only=True), PID, COMMAND),
    ),
    ViewSpec(
        id="io_by_type", name="I/O by Type", key="fd.type", filter="evt.is_io=true", sort="IOPS", drilldown="procs",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.sport", "evt.res", "k8s.pod.id"),
        description="Reads and writes by kind of fd (file, ipv4, unix, pipe...): bytes, calls and time spent.",
        columns=(Column("BPS IN", "evt.buflen.in", "time_avg", "bytes/s", "Bytes read per second."),
                 Column("BPS OUT", "evt.buflen.out", "time_avg", "bytes/s", "Bytes written per second."),
                 Column("IOPS", "evt.count", "time_avg", "rate", "I/O calls (enter and exit) per second."),
                 Column("TIME", "evt.latency", "sum", "time", "Time spent in the calls."),
                 Column("I/O Type", "fd.type")),
    ),
    ViewSpec(
        id="errors", name="Errors", key="evt.res", filter="evt.failed=true", sort="COUNT", drilldown="procs_errors",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.sport", "fd.directory",
                    "fd.containerdirectory", "k8s.pod.id", "k8s.ns.name"),
        description="Failed system calls by error.",
        columns=(Column("COUNT", "evt.count", "sum", "count", "Calls that failed with it."),
                 Column("ERROR", "evt.res")),
    ),
    ViewSpec(
        id="procs_errors", name="Processes Errors", key="proc.pid", filter="evt.failed=true", sort="FILE",
        drilldown="errors", applies_to=("container.id", "fd.name", "fd.containername", "fd.sport", "evt.type",
                                        "fd.directory", "fd.containerdirectory", "evt.res", "k8s.pod.id"),
        description="Processes by failed calls: file, network, memory and other ones.",
        columns=(Column("FILE", "evt.count.error.file", "sum", "count", "Failed file calls."),
                 Column("NET", "evt.count.error.net", "sum", "count", "Failed network calls."),
                 Column("MEMORY", "evt.count.error.memory", "sum", "count", "Failed memory calls."),
                 Column("OTHER", "evt.count.error.other", "sum", "count", "Other failed calls."),
                 PID, Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    ViewSpec(
        id="syscalls", name="System Calls", key="evt.type", filter="syscall.type exists", sort="CALLS/S",
        drilldown="syscall_procs", applies_to=tuple(k for k in _ALL_KEYS if k != "evt.type"),
        description="System calls: calls per second (enter and exit), time spent, average latency.",
        columns=(Column("CALLS/S", "evt.count", "time_avg", "rate", "Calls (enter and exit) per second."),
                 Column("TOT TIME", "evt.latency", "sum", "time", "Time spent in the call."),
                 Column("AVG TIME", "evt.latency", "avg", "time", "Average latency.", where="evt.dir=<"),
                 Column("SYSCALL", "evt.type")),
    ),
    ViewSpec(
        id="syscall_procs", name="Syscall Callers", key="proc.pid", filter="syscall.type exists", sort="CALLS/S",
        applies_to=("evt.type",),
        description="The processes making system calls: calls per second and time spent.",
        columns=(Column("CALLS/S", "evt.count", "time_avg", "rate", "Calls (enter and exit) per second."),
                 Column("TIME", "evt.latency", "sum", "time", "Time spent in the calls."),
                 Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    ViewSpec(
        id="spy_users", name="Spy Users", kind="list", key="evt.num",
        filter=("((evt.type=execve and evt.dir=<) or (evt.type=chdir and evt.dir=< and proc.name contains sh "
                "and not proc.name contains sshd)) and evt.failed=false"),
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "k8s.pod.id", "k8s.ns.name"),
        description="Commands users run and directories their shells enter.",
        columns=(TIME, Column("USER", "user.name"), Column("SHELL", "proc.ppid", units="count"),
                 Column("Container", "container.name", containers_only=True), COMMAND),
    ),
    _k8s("kubernetes_namespaces", "K8s Namespaces", "k8s.ns.name", (Column("NAME", "k8s.ns.name"),),
         "kubernetes_pods", ("evt.res", "k8s.pod.id")),
    _k8s("kubernetes_pods", "K8s Pods", "k8s.pod.id",
         (Column("ID", "k8s.pod.id"), Column("NAME", "k8s.pod.name"), Column("NAMESPACE", "k8s.ns.name"),
          Column("LABELS", "k8s.pod.labels")), "containers", ("evt.res", "k8s.ns.name")),
    ViewSpec(
        id="spectro_all", name="Spectrogram-All", kind="spectrogram", key="evt.latency", filter="evt.dir=<",
        applies_to=("evt.type", "container.id", "proc.pid", "proc.name", "thread.tid", "fd.name", "fd.type"),
        description="How long system calls take over time: calls per latency range (log scale), every interval.",
        columns=(Column("COUNT", "evt.count", "sum", "count"),),
    ),
    ViewSpec(
        id="spectro_file", name="Spectrogram-File", kind="spectrogram", key="evt.latency",
        filter="evt.dir=< and fd.type=file",
        applies_to=("container.id", "proc.pid", "proc.name", "thread.tid", "fd.name", "fd.directory"),
        description="How long file I/O takes over time: calls per latency range (log scale), every interval.",
        columns=(Column("COUNT", "evt.count", "sum", "count"),),
    ),
)
