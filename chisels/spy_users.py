"""spy_users: what users run from their shells, and where they cd, indented by shell depth."""

from __future__ import annotations

from tracer.chisel import Chisel, ChiselArg
from tracer.event import Event
from tracer.na import NA

MAX_ANCESTORS = 16


class SpyUsers(Chisel):
    """Every successful execve whose process has a shell ancestor, and every shell's chdir.

    Each line starts with the pid of the farthest shell ancestor (the login shell), then the
    time, the user and the command: ``1234 17:35:48 root) ls -l``. A command run from a command
    run from that shell is indented one step more (3 spaces; 4 with -pc, which also shows
    ``user@container`` and colours host lines green and container lines blue).
    """

    name = "spy_users"
    category = "Security"
    short_description = "Display interactive user activity"
    description = ("Lists every command that users launch interactively (e.g. from bash) and every directory users "
                   "visit. This chisel is compatible with containers using the ktrace -pc or -pcontainer argument, "
                   "otherwise no container information will be shown. (Blue represents a process running within a "
                   "container, and Green represents a host process)")
    args = (
        ChiselArg("max_depth", "the maximum depth to show in the hierarchy of processes", "int", optional=True,
                  default=-1),
        ChiselArg("disable_color", "Set to 'disable_colors' if you want to disable color output", optional=True,
                  choices=("disable_color", "disable_colors")),
    )

    def on_init(self) -> None:
        self.filter = ("((evt.type=execve and evt.dir=<) or (evt.type=chdir and evt.dir=< and proc.name contains sh "
                       "and not proc.name contains sshd)) and evt.failed=false")
        self.user = self.field("user.name")
        self.time_s = self.field("evt.time.s")
        self.ppid = self.field("proc.ppid")
        self.exe = self.field("proc.exe")
        self.pargs = self.field("proc.args")
        self.path = self.field("evt.rawarg.path")
        self.cname = self.field("container.name")
        self.aname = [self.field(f"proc.aname[{j}]") for j in range(MAX_ANCESTORS + 1)]
        self.apid = [self.field(f"proc.apid[{j}]") for j in range(MAX_ANCESTORS + 1)]
        self.max_depth: int = self.arg["max_depth"]
        self.c = self.palette(disabled=self.arg["disable_color"] is not None)
        # pid -> (depth, pid of its farthest shell ancestor); depth -1: no shell above it.
        self.tree: dict[int, tuple[int, int]] = {}

    def _shell_of(self, ev: Event, chdir: bool) -> tuple[int, int]:
        """Depth and farthest shell among the ancestors: a process's from its parent up, a
        shell's chdir from the shell itself up."""
        found = (-1, 0)
        for j in range(1, MAX_ANCESTORS + 1):
            a = j - 1 if chdir else j
            name = self.aname[a](ev)
            if name is None:
                if self.apid[a](ev) is None:
                    break
                continue
            if len(name) >= 2 and name.endswith("sh"):
                apid = self.apid[a](ev)
                found = (j - 1 if apid in self.tree else 0, apid)
        return found

    def on_event(self, ev: Event) -> None:
        chdir = ev.type == "chdir"
        pid = ev.pid
        ppid = pid if chdir else self.ppid(ev)
        if ppid is None:
            return
        if ppid not in self.tree:
            self.tree[ppid] = (-1, 0)  # visible to _shell_of: the parent itself counts as known
            self.tree[ppid] = self._shell_of(ev, chdir)
        depth_parent, shell = self.tree[ppid]
        if depth_parent == -1:
            return
        if pid not in self.tree:
            self.tree[pid] = (1 + depth_parent, shell)
        depth, shell = self.tree[pid]
        corr = 0 if chdir else 1
        if self.max_depth != -1 and depth - corr > self.max_depth:
            return
        c = self.c
        color = ""
        who = self.user(ev) or NA
        if self.ctx.container_mode:
            cname = self.cname(ev) or NA
            color = c.green if cname == "host" else c.blue
            who = f"{who}@{cname}"
        # sysdig indents a cd by 4 per level in both modes, a command by 3 (4 with -pc).
        step = 4 if chdir or self.ctx.container_mode else 3
        indent = " " * max(0, step * (depth - corr))
        head = f"{color}{indent}{shell} {self.time_s(ev)} {who})"
        if chdir:
            self.print(f"{head} cd {self.path(ev) or '<NA>'}")
        else:
            self.print(f"{head} {self.exe(ev) or '<NA>'} {self.pargs(ev) or ''}")
        self.flush()

    def on_capture_end(self, ts_ns: int) -> None:
        self.print(self.c.reset)
