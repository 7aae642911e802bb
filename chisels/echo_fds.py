"""echo_fds: the data every read and write moved, with a header line per call."""

from __future__ import annotations

import json

from tracer.chisel import Chisel, ChiselArg, format_bytes
from tracer.event import Event
from tracer.na import NA

COLOR_WORDS = ("disable_color", "disable_colors")


class EchoFds(Chisel):
    """Per successful read or write: ``------ Read 5B from   <fd.name> (<proc.name>)`` (red) or
    ``------ Write ... to ...`` (blue), then the buffer as -A / -X / -x / -b render it. With -pc the
    container's name and id follow the verb, in brackets. Colours only on a terminal."""

    name = "echo_fds"
    category = "I/O"
    short_description = "Print the data read and written by processes."
    description = ("Print the data read and written for any FD. Combine this script with a filter to restrict what "
                   "it shows. This chisel is compatible with containers using the ktrace -pc or -pcontainer "
                   "argument, otherwise no container information will be shown. (Blue represents  [Write], and Red "
                   "represents [Read] for all data except when the -pc or -pcontainer argument is used. If used the "
                   "container.name and container.id will be represented as: Green [host], and Cyan [container]) "
                   "Container information will contain '[]' around container.name and container.id.")
    args = (ChiselArg("disable_color", "Set to 'disable_colors' if you want to disable color output",
                      optional=True, choices=COLOR_WORDS),)

    def on_init(self) -> None:
        self.filter = "evt.is_io=true and evt.dir=< and evt.rawres>0"
        self.snaplen = 2000  # live: more of the conversation than the default 80 bytes
        self.res = self.field("evt.rawarg.res")
        self.is_read = self.field("evt.is_io_read")
        self.fd_name = self.field("fd.name")
        self.proc_name = self.field("proc.name")
        self.cname = self.field("container.name")
        self.cid = self.field("container.id")
        self.c = self.palette(disabled=self.arg["disable_color"] is not None)

    def on_event(self, ev: Event) -> None:
        res = self.res(ev)
        if res is None or res <= 0:
            return
        c = self.c
        name = self.fd_name(ev)
        name = NA if name is None else name  # an empty name prints empty, as sysdig's
        pname = self.proc_name(ev) or NA
        container = ""
        if self.ctx.container_mode:
            cname = self.cname(ev) or NA
            color = c.green if cname == "host" else c.cyan
            container = f"{color} [{cname}] [{self.cid(ev) or '<NA>'}]"
        if self.is_read(ev):
            line = f"{c.red}------ Read {format_bytes(res)} from {container} {c.red} {name} ({pname})"
        else:
            line = f"{c.blue}------ Write {format_bytes(res)} to {container} {c.blue} {name} ({pname})"
        self.print(line)
        data = ev.param("data")
        if data is None:
            self.flush()
            return  # sendfile and the like carry no buffer
        text = ev.arg_str(data, self.ctx.render)
        self.print(json.dumps({"evt.arg.data": text}) if self.ctx.json_out else text)
        self.flush()

    def on_capture_end(self, ts_ns: int) -> None:
        self.print(self.c.reset)
