"""sysdig's PPM event table: every event a .scap file can hold, declared once.

A fact of the scap format (falcosecurity/libs ``driver/event_table.c``, ``flags_table.c`` and
``ppm_events_public.h``), written in ktrace's own notation and parsed once at import:

    EVENTS   one event per line, ``id name category flags params`` (indented lines continue
             its parameters)
             id        the PPM event type (``PPME_*``); even ids are enters (and single events), odd
                       ids exits
             flags     comma-separated ``EF_*`` names (lower case, without the prefix), or ``-``
             params    ``name:type[/format[/table]]`` (``~`` stands for a space in a name): type
                       is a ``PT_*`` name, format a ``PF_*`` name, table the flag table (FLAGS) a
                       flags or enum parameter is shown with, or ``dirfdN`` for a path relative
                       to the fd in parameter N
    FLAGS    the PPM flag tables (PPM values, not Linux's): ``table: NAME=value ...`` in the order
             sysdig matches them
    SYSCALLS the PPM syscall codes (``PPM_SC_*``) in order, naming generic events
    DYNAMIC  the tables of a dynamic parameter (``PT_DYN``, libs' ``dynamic_params_table.c``): its
             first byte picks the row, whose ``type/format`` the rest of its bytes are read as

Writers only append parameters to existing events (readers show the ones a file holds) and add new
ids; ``SCAP_TABLE_VERSION`` names the libs event table this copy matches: ids 0-335 as of libs
0.1.1 (what sysdig 0.29 reads), 336-453 from libs 0.20. Bump its minor for additions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

SCAP_TABLE_VERSION: Final = (1, 0)
PPM_EVENT_MAX: Final = 454


class PT(enum.IntEnum):
    """Parameter types (``PT_*``): how a parameter is encoded in an event."""

    NONE = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    CHARBUF = 9
    BYTEBUF = 10
    ERRNO = 11
    SOCKADDR = 12
    SOCKTUPLE = 13
    FD = 14
    PID = 15
    FDLIST = 16
    FSPATH = 17
    SYSCALLID = 18
    SIGTYPE = 19
    RELTIME = 20
    ABSTIME = 21
    PORT = 22
    L4PROTO = 23
    SOCKFAMILY = 24
    BOOL = 25
    IPV4ADDR = 26
    DYN = 27
    FLAGS8 = 28
    FLAGS16 = 29
    FLAGS32 = 30
    UID = 31
    GID = 32
    DOUBLE = 33
    SIGSET = 34
    CHARBUFARRAY = 35
    CHARBUF_PAIR_ARRAY = 36
    IPV4NET = 37
    IPV6ADDR = 38
    IPV6NET = 39
    IPADDR = 40
    IPNET = 41
    MODE = 42
    FSRELPATH = 43
    ENUMFLAGS8 = 44
    ENUMFLAGS16 = 45
    ENUMFLAGS32 = 46
    FD32 = 47
    PID32 = 48


class PF(enum.IntEnum):
    """Print formats (``PF_*``)."""

    NA = 0
    DEC = 1
    HEX = 2
    PADDED_DEC = 3
    ID = 4
    DIR = 5
    OCT = 6


@dataclass(frozen=True, slots=True)
class PParam:
    name: str
    type: PT
    fmt: PF = PF.NA
    table: str = ""  # flag table name, for flags and enums
    dirfd: int = -1  # FSRELPATH: index of the dirfd parameter


@dataclass(frozen=True, slots=True)
class PEvent:
    id: int
    name: str
    category: str
    flags: frozenset[str]
    params: tuple[PParam, ...]

    @property
    def direction(self) -> int:
        """0 for an enter (and the single events: procexit, switch, procinfo, container...), 1 for an
        exit: the id's parity."""
        return self.id & 1


EVENTS = """
0 syscall other - ID:syscallid/dec nativeID:uint16/dec
1 syscall other - ID:syscallid/dec
2 open file creates_fd,modifies_state name:fspath flags:flags32/hex/file_flags mode:uint32/oct
3 open file creates_fd,modifies_state fd:fd/dec name:fspath flags:flags32/hex/file_flags mode:uint32/oct
    dev:uint32/hex
4 close io_other destroys_fd,uses_fd,modifies_state,drop_simple_cons fd:fd/dec
5 close io_other destroys_fd,uses_fd,modifies_state,drop_simple_cons res:errno/dec
6 read io_read uses_fd,reads_from_fd,drop_simple_cons fd:fd/dec size:uint32/dec
7 read io_read uses_fd,reads_from_fd,drop_simple_cons res:errno/dec data:bytebuf
8 write io_write uses_fd,writes_to_fd,drop_simple_cons fd:fd/dec size:uint32/dec
9 write io_write uses_fd,writes_to_fd,drop_simple_cons res:errno/dec data:bytebuf
10 brk memory old_version size:uint32/dec
11 brk memory old_version res:uint64/hex
12 execve process modifies_state,old_version
13 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec
14 clone process modifies_state,old_version
15 clone process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec flags:flags32/hex/clone_flags uid:uint32/dec gid:uint32/dec
16 procexit process modifies_state,old_version
17 NA1 process unused
18 socket net creates_fd,modifies_state domain:flags32/dec/socket_families type:uint32/dec proto:uint32/dec
19 socket net creates_fd,modifies_state fd:fd/dec
20 bind net uses_fd,modifies_state fd:fd/dec
21 bind net uses_fd,modifies_state res:errno/dec addr:sockaddr
22 connect net uses_fd,modifies_state fd:fd/dec addr:sockaddr
23 connect net uses_fd,modifies_state res:errno/dec tuple:socktuple
24 listen net uses_fd fd:fd/dec backlog:uint32/dec
25 listen net uses_fd res:errno/dec
26 accept net creates_fd,modifies_state,old_version
27 accept net creates_fd,modifies_state,old_version fd:fd/dec tuple:socktuple queuepct:uint8/dec
28 send io_write uses_fd,writes_to_fd,drop_simple_cons fd:fd/dec size:uint32/dec
29 send io_write uses_fd,writes_to_fd,drop_simple_cons res:errno/dec data:bytebuf
30 sendto io_write uses_fd,writes_to_fd,modifies_state fd:fd/dec size:uint32/dec tuple:socktuple
31 sendto io_write uses_fd,writes_to_fd,modifies_state res:errno/dec data:bytebuf
32 recv io_read uses_fd,reads_from_fd,drop_simple_cons fd:fd/dec size:uint32/dec
33 recv io_read uses_fd,reads_from_fd,drop_simple_cons res:errno/dec data:bytebuf
34 recvfrom io_read uses_fd,reads_from_fd,modifies_state fd:fd/dec size:uint32/dec
35 recvfrom io_read uses_fd,reads_from_fd,modifies_state res:errno/dec data:bytebuf tuple:socktuple
36 shutdown net uses_fd,modifies_state,drop_simple_cons fd:fd/dec how:flags8/hex/shutdown_how
37 shutdown net uses_fd,modifies_state,drop_simple_cons res:errno/dec
38 getsockname net drop_simple_cons
39 getsockname net drop_simple_cons
40 getpeername net drop_simple_cons
41 getpeername net drop_simple_cons
42 socketpair ipc creates_fd,modifies_state domain:flags32/dec/socket_families type:uint32/dec
    proto:uint32/dec
43 socketpair ipc creates_fd,modifies_state res:errno/dec fd1:fd/dec fd2:fd/dec source:uint64/hex
    peer:uint64/hex
44 setsockopt net -
45 setsockopt net uses_fd res:errno/dec fd:fd/dec level:flags8/dec/sockopt_levels
    optname:flags8/dec/sockopt_options val:dyn/dec/sockopt_dynamic_param optlen:uint32/dec
46 getsockopt net modifies_state,drop_simple_cons
47 getsockopt net uses_fd,modifies_state,drop_simple_cons res:errno/dec fd:fd/dec
    level:flags8/dec/sockopt_levels optname:flags8/dec/sockopt_options val:dyn/dec/sockopt_dynamic_param
    optlen:uint32/dec
48 sendmsg io_write uses_fd,writes_to_fd,modifies_state fd:fd/dec size:uint32/dec tuple:socktuple
49 sendmsg io_write uses_fd,writes_to_fd,modifies_state res:errno/dec data:bytebuf
50 sendmmsg io_write drop_simple_cons
51 sendmmsg io_write drop_simple_cons
52 recvmsg io_read uses_fd,reads_from_fd,modifies_state fd:fd/dec
53 recvmsg io_read uses_fd,reads_from_fd,modifies_state res:errno/dec size:uint32/dec data:bytebuf
    tuple:socktuple
54 recvmmsg io_read drop_simple_cons
55 recvmmsg io_read drop_simple_cons
56 accept net creates_fd,modifies_state,old_version flags:int32/hex
57 accept net creates_fd,modifies_state,old_version fd:fd/dec tuple:socktuple queuepct:uint8/dec
58 creat file creates_fd,modifies_state name:fspath mode:uint32/oct
59 creat file creates_fd,modifies_state fd:fd/dec name:fspath mode:uint32/oct dev:uint32/hex
60 pipe ipc creates_fd,modifies_state
61 pipe ipc creates_fd,modifies_state res:errno/dec fd1:fd/dec fd2:fd/dec ino:uint64/dec
62 eventfd ipc creates_fd,modifies_state,drop_simple_cons initval:uint64/dec flags:flags32/hex
63 eventfd ipc creates_fd,modifies_state,drop_simple_cons res:fd/dec
64 futex ipc drop_simple_cons addr:uint64/hex op:flags16/hex/futex_operations val:uint64/dec
65 futex ipc drop_simple_cons res:errno/dec
66 stat file drop_simple_cons
67 stat file drop_simple_cons res:errno/dec path:fspath
68 lstat file drop_simple_cons
69 lstat file drop_simple_cons res:errno/dec path:fspath
70 fstat file uses_fd,drop_simple_cons fd:fd
71 fstat file uses_fd,drop_simple_cons res:errno/dec
72 stat64 file drop_simple_cons
73 stat64 file drop_simple_cons res:errno/dec path:fspath
74 lstat64 file drop_simple_cons
75 lstat64 file drop_simple_cons res:errno/dec path:fspath
76 fstat64 file uses_fd,drop_simple_cons fd:fd
77 fstat64 file uses_fd,drop_simple_cons res:errno/dec
78 epoll_wait wait waits,drop_simple_cons maxevents:errno/dec
79 epoll_wait wait waits,drop_simple_cons res:errno/dec
80 poll wait waits,drop_simple_cons fds:fdlist/dec timeout:int64/dec
81 poll wait waits,drop_simple_cons res:errno/dec fds:fdlist/dec
82 select wait waits,drop_simple_cons
83 select wait waits,drop_simple_cons res:errno/dec
84 select wait waits,drop_simple_cons
85 select wait waits,drop_simple_cons res:errno/dec
86 lseek file uses_fd,drop_simple_cons fd:fd/dec offset:uint64/dec whence:flags8/dec/lseek_whence
87 lseek file uses_fd,drop_simple_cons res:errno/dec
88 llseek file uses_fd,drop_simple_cons fd:fd/dec offset:uint64/dec whence:flags8/dec/lseek_whence
89 llseek file uses_fd,drop_simple_cons res:errno/dec
90 ioctl io_other uses_fd,old_version fd:fd/dec request:uint64/hex
91 ioctl io_other uses_fd,old_version res:errno/dec
92 getcwd file drop_simple_cons
93 getcwd file drop_simple_cons res:errno/dec path:charbuf
94 chdir file modifies_state
95 chdir file modifies_state res:errno/dec path:charbuf
96 fchdir file uses_fd,modifies_state fd:fd
97 fchdir file uses_fd,modifies_state res:errno/dec
98 mkdir file - path:fspath mode:uint32/hex
99 mkdir file - res:errno/dec
100 rmdir file - path:fspath
101 rmdir file - res:errno/dec
102 openat file creates_fd,modifies_state,old_version dirfd:fd/dec name:charbuf flags:flags32/hex/file_flags
    mode:uint32/oct
103 openat file creates_fd,modifies_state,old_version fd:fd/dec
104 link file old_version oldpath:fspath newpath:fspath
105 link file old_version res:errno/dec
106 linkat file old_version olddir:fd/dec oldpath:charbuf newdir:fd/dec newpath:charbuf
107 linkat file old_version res:errno/dec
108 unlink file old_version path:fspath
109 unlink file old_version res:errno/dec
110 unlinkat file old_version dirfd:fd/dec name:charbuf
111 unlinkat file old_version res:errno/dec
112 pread io_read uses_fd,reads_from_fd,drop_simple_cons fd:fd/dec size:uint32/dec pos:uint64/dec
113 pread io_read uses_fd,reads_from_fd,drop_simple_cons res:errno/dec data:bytebuf
114 pwrite io_write uses_fd,writes_to_fd,drop_simple_cons fd:fd/dec size:uint32/dec pos:uint64/dec
115 pwrite io_write uses_fd,writes_to_fd,drop_simple_cons res:errno/dec data:bytebuf
116 readv io_read uses_fd,reads_from_fd,drop_simple_cons fd:fd/dec
117 readv io_read uses_fd,reads_from_fd,drop_simple_cons res:errno/dec size:uint32/dec data:bytebuf
118 writev io_write uses_fd,writes_to_fd,drop_simple_cons fd:fd/dec size:uint32/dec
119 writev io_write uses_fd,writes_to_fd,drop_simple_cons res:errno/dec data:bytebuf
120 preadv io_read uses_fd,reads_from_fd,drop_simple_cons fd:fd/dec pos:uint64/dec
121 preadv io_read uses_fd,reads_from_fd,drop_simple_cons res:errno/dec size:uint32/dec data:bytebuf
122 pwritev io_write uses_fd,writes_to_fd,drop_simple_cons fd:fd/dec size:uint32/dec pos:uint64/dec
123 pwritev io_write uses_fd,writes_to_fd,drop_simple_cons res:errno/dec data:bytebuf
124 dup io_other creates_fd,uses_fd,modifies_state fd:fd/dec
125 dup io_other creates_fd,uses_fd,modifies_state res:fd/dec
126 signalfd signal creates_fd,modifies_state fd:fd/dec mask:uint32/hex flags:flags8/hex
127 signalfd signal creates_fd,modifies_state res:fd/dec
128 kill signal - pid:pid/dec sig:sigtype/dec
129 kill signal - res:errno/dec
130 tkill signal - tid:pid/dec sig:sigtype/dec
131 tkill signal - res:errno/dec
132 tgkill signal - pid:pid/dec tid:pid/dec sig:sigtype/dec
133 tgkill signal - res:errno/dec
134 nanosleep sleep waits,drop_simple_cons interval:reltime/dec
135 nanosleep sleep waits,drop_simple_cons res:errno/dec
136 timerfd_create time creates_fd,modifies_state,drop_simple_cons clockid:uint8/dec flags:flags8/hex
137 timerfd_create time creates_fd,modifies_state,drop_simple_cons res:fd/dec
138 inotify_init ipc creates_fd,modifies_state flags:flags8/hex
139 inotify_init ipc creates_fd,modifies_state res:fd/dec
140 getrlimit process drop_simple_cons resource:flags8/dec/rlimit_resources
141 getrlimit process drop_simple_cons res:errno/dec cur:int64/dec max:int64/dec
142 setrlimit process drop_simple_cons resource:flags8/dec/rlimit_resources
143 setrlimit process drop_simple_cons res:errno/dec cur:int64/dec max:int64/dec
144 prlimit process - pid:pid/dec resource:flags8/dec/rlimit_resources
145 prlimit process - res:errno/dec newcur:int64/dec newmax:int64/dec oldcur:int64/dec oldmax:int64/dec
146 switch scheduler skipparsereset,old_version,drop_simple_cons next:pid/dec
147 NA2 scheduler skipparsereset,unused,old_version
148 drop internal skipparsereset ratio:uint32/dec
149 drop internal skipparsereset ratio:uint32/dec
150 fcntl io_other uses_fd,modifies_state,drop_simple_cons fd:fd/dec cmd:flags8/dec/fcntl_commands
151 fcntl io_other uses_fd,modifies_state,drop_simple_cons res:fd/dec
152 switch scheduler drop_simple_cons next:pid/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec
153 NA2 scheduler unused
154 execve process modifies_state,old_version
155 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec
156 clone process modifies_state,old_version
157 clone process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec flags:flags32/hex/clone_flags uid:uint32/dec gid:uint32/dec
158 brk memory drop_simple_cons addr:uint64/hex
159 brk memory drop_simple_cons res:uint64/hex vm_size:uint32/dec vm_rss:uint32/dec vm_swap:uint32/dec
160 mmap memory drop_simple_cons addr:uint64/hex length:uint64/dec prot:flags32/hex/prot_flags
    flags:flags32/hex/mmap_flags fd:fd/dec offset:uint64/dec
161 mmap memory drop_simple_cons res:uint64/hex vm_size:uint32/dec vm_rss:uint32/dec vm_swap:uint32/dec
162 mmap2 memory drop_simple_cons addr:uint64/hex length:uint64/dec prot:flags32/hex/prot_flags
    flags:flags32/hex/mmap_flags fd:fd/dec pgoffset:uint64/dec
163 mmap2 memory drop_simple_cons res:uint64/hex vm_size:uint32/dec vm_rss:uint32/dec vm_swap:uint32/dec
164 munmap memory drop_simple_cons addr:uint64/hex length:uint64/dec
165 munmap memory drop_simple_cons res:errno/dec vm_size:uint32/dec vm_rss:uint32/dec vm_swap:uint32/dec
166 splice io_other uses_fd,drop_simple_cons fd_in:fd/dec fd_out:fd/dec size:uint64/dec
    flags:flags32/hex/splice_flags
167 splice io_other uses_fd,drop_simple_cons res:errno/dec
168 ptrace process - request:flags16/dec/ptrace_requests pid:pid/dec
169 ptrace process - res:errno/dec addr:dyn/hex/ptrace_dynamic_param data:dyn/hex/ptrace_dynamic_param
170 ioctl io_other uses_fd fd:fd/dec request:uint64/hex argument:uint64/hex
171 ioctl io_other uses_fd res:errno/dec
172 execve process modifies_state,old_version
173 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec env:bytebuf
174 rename file -
175 rename file - res:errno/dec oldpath:fspath newpath:fspath
176 renameat file -
177 renameat file - res:errno/dec olddirfd:fd/dec oldpath:fsrelpath/na/dirfd1 newdirfd:fd/dec
    newpath:fsrelpath/na/dirfd3
178 symlink file -
179 symlink file - res:errno/dec target:charbuf linkpath:fspath
180 symlinkat file -
181 symlinkat file - res:errno/dec target:charbuf linkdirfd:fd/dec linkpath:fsrelpath/na/dirfd2
182 fork process modifies_state,old_version
183 fork process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec flags:flags32/hex/clone_flags uid:uint32/dec gid:uint32/dec
184 vfork process modifies_state,old_version
185 vfork process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec flags:flags32/hex/clone_flags uid:uint32/dec gid:uint32/dec
186 procexit process modifies_state status:errno/dec ret:errno/dec sig:sigtype/dec core:uint8/dec
187 NA1 process unused
188 sendfile io_write uses_fd,drop_simple_cons out_fd:fd/dec in_fd:fd/dec offset:uint64/dec size:uint64/dec
189 sendfile io_write uses_fd,drop_simple_cons res:errno/dec offset:uint64/dec
190 quotactl user - cmd:flags16/dec/quotactl_cmds type:flags8/dec/quotactl_types id:uint32/dec
    quota_fmt:flags8/dec/quotactl_quota_fmts
191 quotactl user - res:errno/dec special:charbuf quotafilepath:charbuf dqb_bhardlimit:uint64/dec
    dqb_bsoftlimit:uint64/dec dqb_curspace:uint64/dec dqb_ihardlimit:uint64/dec dqb_isoftlimit:uint64/dec
    dqb_btime:reltime/dec dqb_itime:reltime/dec dqi_bgrace:reltime/dec dqi_igrace:reltime/dec
    dqi_flags:flags8/dec/quotactl_dqi_flags quota_fmt_out:flags8/dec/quotactl_quota_fmts
192 setresuid user modifies_state ruid:uid/dec euid:uid/dec suid:uid/dec
193 setresuid user modifies_state res:errno/dec
194 setresgid user modifies_state rgid:gid/dec egid:gid/dec sgid:gid/dec
195 setresgid user modifies_state res:errno/dec
196 sysdigevent internal skipparsereset event_type:uint32/dec event_data:uint64/dec
197 sysdigevent internal unused
198 setuid user modifies_state uid:uid/dec
199 setuid user modifies_state res:errno/dec
200 setgid user modifies_state gid:gid/dec
201 setgid user modifies_state res:errno/dec
202 getuid user drop_simple_cons
203 getuid user drop_simple_cons uid:uid/dec
204 geteuid user drop_simple_cons
205 geteuid user drop_simple_cons euid:uid/dec
206 getgid user drop_simple_cons
207 getgid user drop_simple_cons gid:gid/dec
208 getegid user drop_simple_cons
209 getegid user drop_simple_cons egid:gid/dec
210 getresuid user drop_simple_cons
211 getresuid user drop_simple_cons res:errno/dec ruid:uid/dec euid:uid/dec suid:uid/dec
212 getresgid user drop_simple_cons
213 getresgid user drop_simple_cons res:errno/dec rgid:gid/dec egid:gid/dec sgid:gid/dec
214 execve process modifies_state,old_version
215 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf env:bytebuf
216 clone process modifies_state,old_version
217 clone process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec
218 fork process modifies_state,old_version
219 fork process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec
220 vfork process modifies_state,old_version
221 vfork process modifies_state,old_version res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec
222 clone process modifies_state
223 clone process modifies_state res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec vm_rss:uint32/dec
    vm_swap:uint32/dec comm:charbuf cgroups:bytebuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec vtid:pid/dec vpid:pid/dec
224 fork process modifies_state
225 fork process modifies_state res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec vm_rss:uint32/dec
    vm_swap:uint32/dec comm:charbuf cgroups:bytebuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec vtid:pid/dec vpid:pid/dec
226 vfork process modifies_state
227 vfork process modifies_state res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec vm_rss:uint32/dec
    vm_swap:uint32/dec comm:charbuf cgroups:bytebuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec vtid:pid/dec vpid:pid/dec
228 container internal skipparsereset,modifies_state,old_version id:charbuf type:uint32/dec name:charbuf
    image:charbuf
229 container internal unused,old_version
230 execve process modifies_state
231 execve process modifies_state res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf cgroups:bytebuf env:bytebuf
232 signaldeliver signal drop_simple_cons spid:pid/dec dpid:pid/dec sig:sigtype/dec
233 signaldeliver signal unused
234 procinfo internal skipparsereset,drop_simple_cons cpu_usr:uint64/dec cpu_sys:uint64/dec
235 NA2 internal unused
236 getdents file uses_fd,drop_simple_cons fd:fd
237 getdents file uses_fd,drop_simple_cons res:errno/dec
238 getdents64 file uses_fd,drop_simple_cons fd:fd
239 getdents64 file uses_fd,drop_simple_cons res:errno/dec
240 setns process uses_fd fd:fd nstype:flags32/hex/clone_flags
241 setns process uses_fd res:errno/dec
242 flock file uses_fd fd:fd operation:flags32/hex/flock_flags
243 flock file uses_fd res:errno/dec
244 cpu_hotplug system skipparsereset,modifies_state cpu:uint32/dec action:uint32/dec
245 NA2 system unused
246 accept net creates_fd,modifies_state
247 accept net creates_fd,modifies_state fd:fd/dec tuple:socktuple queuepct:uint8/dec queuelen:uint32/dec
    queuemax:uint32/dec
248 accept net creates_fd,modifies_state flags:int32/hex
249 accept net creates_fd,modifies_state fd:fd/dec tuple:socktuple queuepct:uint8/dec queuelen:uint32/dec
    queuemax:uint32/dec
250 semop process drop_simple_cons semid:int32/dec
251 semop process drop_simple_cons res:errno/dec nsops:uint32/dec sem_num_0:uint16/dec sem_op_0:int16/dec
    sem_flg_0:flags16/hex/semop_flags sem_num_1:uint16/dec sem_op_1:int16/dec
    sem_flg_1:flags16/hex/semop_flags
252 semctl process drop_simple_cons semid:int32/dec semnum:int32/dec cmd:flags16/hex/semctl_commands
    val:int32/dec
253 semctl process drop_simple_cons res:errno/dec
254 ppoll wait waits,drop_simple_cons fds:fdlist/dec timeout:reltime/dec sigmask:sigset/dec
255 ppoll wait waits,drop_simple_cons res:errno/dec fds:fdlist/dec
256 mount file modifies_state flags:flags32/hex/mount_flags
257 mount file modifies_state res:errno/dec dev:charbuf dir:fspath type:charbuf
258 umount file modifies_state flags:flags32/hex/umount_flags
259 umount file modifies_state res:errno/dec name:fspath
260 k8s internal skipparsereset,modifies_state json:charbuf
261 NA3 system unused
262 semget process drop_simple_cons key:int32/hex nsems:int32/dec semflg:flags32/hex/semget_flags
263 semget process drop_simple_cons res:errno/dec
264 access file drop_simple_cons mode:flags32/hex/access_flags
265 access file drop_simple_cons res:errno/dec name:fspath
266 chroot process modifies_state
267 chroot process modifies_state res:errno/dec path:fspath
268 tracer other - id:int64/dec tags:charbufarray args:charbuf_pair_array
269 tracer other - id:int64/dec tags:charbufarray args:charbuf_pair_array
270 mesos internal skipparsereset,modifies_state json:charbuf
271 NA4 system unused
272 container process modifies_state json:charbuf
273 container process unused
274 setsid process modifies_state
275 setsid process modifies_state res:pid/dec
276 mkdir file - mode:uint32/hex
277 mkdir file - res:errno/dec path:fspath
278 rmdir file -
279 rmdir file - res:errno/dec path:fspath
280 notification other skipparsereset id:charbuf/dec desc:charbuf
281 NA4 system unused
282 execve process modifies_state,old_version
283 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf cgroups:bytebuf env:bytebuf tty:int32/dec
284 unshare process - flags:flags32/hex/clone_flags
285 unshare process - res:errno/dec
286 infra internal skipparsereset source:charbuf/dec name:charbuf description:charbuf scope:charbuf
287 NA4 system unused
288 execve process modifies_state,old_version filename:fspath
289 execve process modifies_state,old_version res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf cgroups:bytebuf env:bytebuf tty:int32/dec
290 page_fault other skipparsereset,drop_simple_cons addr:uint64/hex ip:uint64/hex error:flags32/hex/pf_flags
291 NA5 other unused
292 execve process modifies_state filename:fspath
293 execve process modifies_state res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf cgroups:bytebuf env:bytebuf tty:int32/dec pgid:pid/dec
    loginuid:int32/dec flags:flags32/hex/execve_flags
294 setpgid process modifies_state pid:pid/dec pgid:pid/dec
295 setpgid process modifies_state res:pid/dec
296 bpf other creates_fd cmd:int64/dec
297 bpf other creates_fd res_or_fd:dyn/dec/bpf_dynamic_param
298 seccomp other - op:uint64/dec flags:uint64/hex
299 seccomp other - res:errno/dec
300 unlink file -
301 unlink file - res:errno/dec path:fspath
302 unlinkat file -
303 unlinkat file - res:errno/dec dirfd:fd/dec name:fsrelpath/na/dirfd1 flags:flags32/hex/unlinkat_flags
304 mkdirat file -
305 mkdirat file - res:errno/dec dirfd:fd/dec path:fsrelpath/na/dirfd1 mode:uint32/hex
306 openat file creates_fd,modifies_state dirfd:fd/dec name:fsrelpath/na/dirfd0 flags:flags32/hex/file_flags
    mode:uint32/oct
307 openat file creates_fd,modifies_state fd:fd/dec dirfd:fd/dec name:fsrelpath/na/dirfd1
    flags:flags32/hex/file_flags mode:uint32/oct dev:uint32/hex
308 link file -
309 link file - res:errno/dec oldpath:fspath newpath:fspath
310 linkat file -
311 linkat file - res:errno/dec olddir:fd/dec oldpath:fsrelpath/na/dirfd1 newdir:fd/dec
    newpath:fsrelpath/na/dirfd3 flags:flags32/hex/linkat_flags
312 fchmodat file -
313 fchmodat file - res:errno/dec dirfd:fd/dec filename:fsrelpath/na/dirfd1 mode:mode/oct/chmod_mode
314 chmod file -
315 chmod file - res:errno/dec filename:fspath mode:mode/oct/chmod_mode
316 fchmod file -
317 fchmod file - res:errno/dec fd:fd/dec mode:mode/oct/chmod_mode
318 renameat2 file -
319 renameat2 file - res:errno/dec olddirfd:fd/dec oldpath:fsrelpath/na/dirfd1 newdirfd:fd/dec
    newpath:fsrelpath/na/dirfd3 flags:flags32/hex/renameat2_flags
320 userfaultfd file creates_fd,modifies_state
321 userfaultfd file creates_fd,modifies_state res:errno/dec flags:flags32/hex/file_flags
322 pluginevent other large_payload plugin~ID:uint32/dec event_data:bytebuf
323 pluginevent other unused
324 container process modifies_state,large_payload json:charbuf
325 container process unused
326 openat2 file creates_fd,modifies_state dirfd:fd/dec name:fsrelpath/na/dirfd1 flags:flags32/hex/file_flags
    mode:uint32/oct resolve:flags32/hex/openat2_flags
327 openat2 file creates_fd,modifies_state fd:fd/dec dirfd:fd/dec name:fsrelpath/na/dirfd1
    flags:flags32/hex/file_flags mode:uint32/oct resolve:flags32/hex/openat2_flags
328 mprotect memory drop_simple_cons addr:uint64/hex length:uint64/dec prot:flags32/hex/prot_flags
329 mprotect memory drop_simple_cons res:errno/dec
330 execveat process modifies_state dirfd:fd/dec pathname:fsrelpath/na/dirfd0 flags:flags32/hex/execveat_flags
331 execveat process modifies_state res:errno/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec
    ptid:pid/dec cwd:charbuf fdlimit:uint64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec
    vm_rss:uint32/dec vm_swap:uint32/dec comm:charbuf cgroups:bytebuf env:bytebuf tty:int32/dec pgid:pid/dec
    loginuid:int32/dec flags:flags32/hex/execve_flags
332 copy_file_range file uses_fd,reads_from_fd,writes_to_fd fdin:fd/dec offin:uint64/dec len:uint64/dec
333 copy_file_range file uses_fd,reads_from_fd,writes_to_fd res:errno/dec fdout:fd/dec offout:uint64/dec
334 clone3 process modifies_state
335 clone3 process modifies_state res:pid/dec exe:charbuf args:bytebuf tid:pid/dec pid:pid/dec ptid:pid/dec
    cwd:charbuf fdlimit:int64/dec pgft_maj:uint64/dec pgft_min:uint64/dec vm_size:uint32/dec vm_rss:uint32/dec
    vm_swap:uint32/dec comm:charbuf cgroups:bytebuf flags:flags32/hex/clone_flags uid:uint32/dec
    gid:uint32/dec vtid:pid/dec vpid:pid/dec
336 open_by_handle_at file old_version,creates_fd,modifies_state
337 open_by_handle_at file creates_fd,modifies_state fd:fd/dec mountfd:fd/dec flags:flags32/hex/file_flags
    path:fspath dev:uint32/hex ino:uint64/dec
338 io_uring_setup io_other old_version,creates_fd,modifies_state
339 io_uring_setup io_other creates_fd,modifies_state res:errno/dec entries:uint32/dec sq_entries:uint32/dec
    cq_entries:uint32/dec flags:flags32/hex/io_uring_setup_flags sq_thread_cpu:uint32/dec
    sq_thread_idle:uint32/dec features:flags32/hex/io_uring_setup_feats
340 io_uring_enter io_other old_version
341 io_uring_enter io_other uses_fd res:errno/dec fd:fd/dec to_submit:uint32/dec min_complete:uint32/dec
    flags:flags32/hex/io_uring_enter_flags sig:sigset/dec
342 io_uring_register io_other old_version
343 io_uring_register io_other uses_fd res:errno/dec fd:fd/dec
    opcode:enumflags16/dec/io_uring_register_opcodes arg:uint64/hex nr_args:uint32/dec
344 mlock memory old_version
345 mlock memory - res:errno/dec addr:uint64/hex len:uint64/dec
346 munlock memory old_version
347 munlock memory - res:errno/dec addr:uint64/hex len:uint64/dec
348 mlockall memory old_version
349 mlockall memory - res:errno/dec flags:flags32/hex/mlockall_flags
350 munlockall memory old_version
351 munlockall memory - res:errno/dec
352 capset process old_version,modifies_state
353 capset process modifies_state res:errno/dec cap_inheritable:uint64/hex cap_permitted:uint64/hex
    cap_effective:uint64/hex
354 useradded process modifies_state uid:uint32/dec gid:uint32/dec name:charbuf home:charbuf shell:charbuf
    container_id:charbuf
355 NA unknown unused
356 userdeleted process modifies_state uid:uint32/dec gid:uint32/dec name:charbuf home:charbuf shell:charbuf
    container_id:charbuf
357 NA unknown unused
358 groupadded process modifies_state gid:uint32/dec name:charbuf container_id:charbuf
359 NA unknown unused
360 groupdeleted process modifies_state gid:uint32/dec name:charbuf container_id:charbuf
361 NA unknown unused
362 dup2 io_other old_version,creates_fd,uses_fd,modifies_state fd:fd/dec
363 dup2 io_other creates_fd,uses_fd,modifies_state res:fd/dec oldfd:fd/dec newfd:fd/dec
364 dup3 io_other old_version,creates_fd,uses_fd,modifies_state fd:fd/dec
365 dup3 io_other creates_fd,uses_fd,modifies_state res:fd/dec oldfd:fd/dec newfd:fd/dec
    flags:flags32/hex/file_flags
366 dup io_other old_version,creates_fd,uses_fd,modifies_state fd:fd/dec
367 dup io_other creates_fd,uses_fd,modifies_state res:fd/dec oldfd:fd/dec
368 bpf other old_version,creates_fd cmd:int64/dec
369 bpf other creates_fd fd:fd/dec cmd:enumflags32/dec/bpf_commands
370 mlock2 memory old_version
371 mlock2 memory - res:errno/dec addr:uint64/hex len:uint64/dec flags:flags32/hex/mlock2_flags
372 fsconfig system old_version
373 fsconfig system uses_fd res:errno/dec fd:fd/dec cmd:enumflags32/dec/fsconfig_cmds key:charbuf
    value_bytebuf:bytebuf value_charbuf:charbuf aux:int32/dec
374 epoll_create wait old_version,creates_fd,modifies_state size:int32/dec
375 epoll_create wait creates_fd,modifies_state res:errno/dec size:int32/dec
376 epoll_create1 wait old_version,creates_fd,modifies_state flags:flags32/hex/epoll_create1_flags
377 epoll_create1 wait creates_fd,modifies_state res:errno/dec flags:flags32/hex/epoll_create1_flags
378 chown file old_version
379 chown file - res:errno/dec path:fspath uid:uint32/dec gid:uint32/dec
380 lchown file old_version
381 lchown file - res:errno/dec path:fspath uid:uint32/dec gid:uint32/dec
382 fchown file old_version
383 fchown file uses_fd res:errno/dec fd:fd/dec uid:uint32/dec gid:uint32/dec
384 fchownat file old_version
385 fchownat file uses_fd res:errno/dec dirfd:fd/dec pathname:fsrelpath/na/dirfd1 uid:uint32/dec
    gid:uint32/dec flags:flags32/hex/fchownat_flags
386 umount file old_version,modifies_state
387 umount file modifies_state res:errno/dec name:fspath
388 accept4 net old_version,creates_fd,modifies_state flags:int32/hex
389 accept4 net creates_fd,modifies_state fd:fd/dec tuple:socktuple queuepct:uint8/dec queuelen:uint32/dec
    queuemax:uint32/dec flags:int32/hex
390 umount2 file old_version,modifies_state flags:flags32/hex/umount_flags
391 umount2 file modifies_state res:errno/dec name:fspath flags:flags32/hex/umount_flags
392 pipe2 ipc old_version,creates_fd,modifies_state
393 pipe2 ipc creates_fd,modifies_state res:errno/dec fd1:fd/dec fd2:fd/dec ino:uint64/dec
    flags:flags32/hex/file_flags
394 inotify_init1 ipc old_version,creates_fd,modifies_state
395 inotify_init1 ipc creates_fd,modifies_state res:fd/dec flags:flags16/hex/file_flags
396 eventfd2 ipc old_version,creates_fd,modifies_state initval:uint64/dec
397 eventfd2 ipc creates_fd,modifies_state res:fd/dec flags:flags16/hex/file_flags initval:uint64/dec
398 signalfd4 signal old_version,creates_fd,modifies_state fd:fd/dec mask:uint32/hex
399 signalfd4 signal creates_fd,modifies_state res:fd/dec flags:flags16/hex/file_flags fd:fd/dec
    mask:uint32/hex
400 prctl process old_version,modifies_state
401 prctl process modifies_state res:errno/dec option:enumflags32/dec/prctl_options arg2_str:charbuf
    arg2_int:int64/dec
402 asyncevent other large_payload plugin_id:uint32/dec name:charbuf data:bytebuf
403 NA unknown unused
404 memfd_create memory old_version,creates_fd,modifies_state
405 memfd_create memory creates_fd,modifies_state fd:fd/dec name:charbuf flags:flags32/hex/memfd_create_flags
406 pidfd_getfd process old_version,creates_fd,modifies_state
407 pidfd_getfd process creates_fd,modifies_state fd:fd/dec pid_fd:fd/dec target_fd:fd/dec flags:uint32/hex
408 pidfd_open process old_version,creates_fd,modifies_state
409 pidfd_open process creates_fd,modifies_state fd:fd/dec pid:pid/dec flags:flags32/hex/pidfd_open_flags
410 init_module other old_version
411 init_module other - res:errno/dec img:bytebuf length:uint64/dec uargs:charbuf
412 finit_module other old_version
413 finit_module other uses_fd,reads_from_fd res:errno/dec fd:fd/dec uargs:charbuf
    flags:flags32/hex/finit_module_flags
414 mknod other old_version
415 mknod other - res:errno/dec path:fspath mode:mode/oct/mknod_mode dev:uint32/dec
416 mknodat other old_version
417 mknodat other uses_fd res:errno/dec dirfd:fd/dec path:fsrelpath/na/dirfd1 mode:mode/oct/mknod_mode
    dev:uint32/dec
418 newfstatat file old_version
419 newfstatat file uses_fd res:errno/dec dirfd:fd/dec path:fsrelpath/na/dirfd1
    flags:flags32/hex/newfstatat_flags
420 process_vm_readv ipc old_version
421 process_vm_readv ipc - res:int64/dec pid:pid/dec data:bytebuf
422 process_vm_writev ipc old_version
423 process_vm_writev ipc - res:int64/dec pid:pid/dec data:bytebuf
424 delete_module other old_version
425 delete_module other - res:errno/dec name:charbuf flags:flags32/hex/delete_module_flags
426 setreuid user old_version,modifies_state
427 setreuid user modifies_state res:errno/dec ruid:uid/dec euid:uid/dec
428 setregid user old_version
429 setregid user modifies_state res:errno/dec rgid:uid/dec egid:uid/dec
430 task iter|process modifies_state ppid:pid32/dec pgid:pid32/dec vpgid:pid32/dec sid:pid32/dec comm:charbuf
    argv:charbufarray exepath:fspath flags:flags32/hex/execve_flags env:charbufarray cwd:charbuf
    fdlimit:uint64/dec euid:uid/dec egid:gid/dec cap_permitted:uint64/hex cap_effective:uint64/hex
    cap_inheritable:uint64/hex exe_ino_num:uint64/dec exe_ino_ctime:abstime/dec exe_ino_mtime:abstime/dec
    vm_size:uint32/dec vm_rss:uint32/dec vm_swap:uint32/dec pgft_maj:uint64/dec pgft_min:uint64/dec
    vtgid:pid32/dec vpid:pid32/dec pidns_init_start_ts:uint64/dec cgroups:charbufarray root:fspath
    start_time:abstime/dec tty:uint32/dec loginuid:uid/dec
431 NA unknown unused
432 task_file_pipe iter|file modifies_state fd:fd32/dec path:fspath ino_num:uint64/dec
433 NA unknown unused
434 task_file_memfd iter|file modifies_state fd:fd32/dec path:fspath ino_num:uint64/dec
435 NA unknown unused
436 task_file_regular iter|file modifies_state fd:fd32/dec path:fspath flags:flags32/hex/file_flags
    mnt_id:uint32/dec ino_num:uint64/dec
437 NA unknown unused
438 task_file_directory iter|file modifies_state fd:fd32/dec path:fspath ino_num:uint64/dec
439 NA unknown unused
440 task_file_socket_inet iter|file modifies_state fd:fd32/dec sk_type:uint16/dec sk_proto:uint16/dec
    local_ip:ipv4addr/hex local_port:port/hex remote_ip:ipv4addr/hex remote_port:port/hex ino_num:uint64/dec
441 NA unknown unused
442 task_file_socket_inet6 iter|file modifies_state fd:fd32/dec sk_type:uint16/dec sk_proto:uint16/dec
    local_ip:ipv6addr/hex local_port:port/hex remote_ip:ipv6addr/hex remote_port:port/hex ino_num:uint64/dec
443 NA unknown unused
444 task_file_socket_unix iter|file modifies_state fd:fd32/dec sk_type:uint16/dec sk_proto:uint16/dec
    sk_pointer:uint64 sun_path:fspath ino_num:uint64/dec
445 NA unknown unused
446 task_file_socket_netlink iter|file modifies_state fd:fd32/dec sk_type:uint16/dec sk_proto:uint16/dec
    ino_num:uint64/dec
447 NA unknown unused
448 task_file_anon_inode iter|file modifies_state fd:fd32/dec fd_type:flags8/dec/anon_inode_fd_types
    path:fspath ino_num:uint64/dec
449 NA unknown unused
450 NA unknown unused
451 close_range io_other modifies_state res:errno/dec first:uint32/dec last:uint32/dec
    flags:flags32/hex/close_range_flags
452 NA unknown unused
453 keyctl other - res:errno/dec operation:enumflags32/dec/keyctl_operations arg2:dyn/dec/keyctl_dynamic_param
    arg3:dyn/dec/keyctl_dynamic_param arg4:dyn/dec/keyctl_dynamic_param arg5:dyn/dec/keyctl_dynamic_param
"""

FLAGS_TEXT = """
socket_families: AF_NFC=0x27 AF_ALG=0x26 AF_CAIF=0x25 AF_IEEE802154=0x24 AF_PHONET=0x23
    AF_ISDN=0x22 AF_RXRPC=0x21 AF_IUCV=0x20 AF_BLUETOOTH=0x1f AF_TIPC=0x1e AF_CAN=0x1d
    AF_LLC=0x1a AF_WANPIPE=0x19 AF_PPPOX=0x18 AF_IRDA=0x17 AF_SNA=0x16 AF_RDS=0x15
    AF_ATMSVC=0x14 AF_ECONET=0x13 AF_ASH=0x12 AF_PACKET=0x11 AF_ROUTE=0x10 AF_NETLINK=0x10
    AF_KEY=0xf AF_SECURITY=0xe AF_NETBEUI=0xd AF_DECnet=0xc AF_ROSE=0xb AF_INET6=0xa AF_X25=0x9
    AF_ATMPVC=0x8 AF_BRIDGE=0x7 AF_NETROM=0x6 AF_APPLETALK=0x5 AF_IPX=0x4 AF_AX25=0x3
    AF_INET=0x2 AF_LOCAL=0x1 AF_UNIX=0x1 AF_UNSPEC=0x0
file_flags: O_LARGEFILE=0x800 O_DIRECTORY=0x400 O_DIRECT=0x200 O_TRUNC=0x100 O_SYNC=0x80
    O_NONBLOCK=0x40 O_EXCL=0x20 O_DSYNC=0x10 O_APPEND=0x8 O_CREAT=0x4 O_RDWR=0x3 O_WRONLY=0x2
    O_RDONLY=0x1 O_CLOEXEC=0x1000 O_NONE=0x0 O_TMPFILE=0x2000
flock_flags: LOCK_SH=0x1 LOCK_EX=0x2 LOCK_NB=0x4 LOCK_UN=0x8 LOCK_NONE=0x0
clone_flags: CLONE_FILES=0x1 CLONE_FS=0x2 CLONE_IO=0x4 CLONE_NEWIPC=0x8 CLONE_NEWNET=0x10
    CLONE_NEWNS=0x20 CLONE_NEWPID=0x40 CLONE_NEWUTS=0x80 CLONE_PARENT=0x100
    CLONE_PARENT_SETTID=0x200 CLONE_PTRACE=0x400 CLONE_SIGHAND=0x800 CLONE_SYSVSEM=0x1000
    CLONE_THREAD=0x2000 CLONE_UNTRACED=0x4000 CLONE_VM=0x8000 CLONE_INVERTED=0x10000
    NAME_CHANGED=0x20000 CLOSED=0x40000 CLONE_NEWUSER=0x100000 CLONE_CHILD_CLEARTID=0x800000
    CLONE_CHILD_SETTID=0x1000000 CLONE_SETTLS=0x2000000 CLONE_STOPPED=0x4000000
    CLONE_VFORK=0x8000000 CLONE_NEWCGROUP=0x10000000
futex_operations: FUTEX_CLOCK_REALTIME=0x100 FUTEX_PRIVATE_FLAG=0x80 FUTEX_CMP_REQUEUE_PI=0xc
    FUTEX_WAIT_REQUEUE_PI=0xb FUTEX_WAKE_BITSET=0xa FUTEX_WAIT_BITSET=0x9 FUTEX_TRYLOCK_PI=0x8
    FUTEX_UNLOCK_PI=0x7 FUTEX_LOCK_PI=0x6 FUTEX_WAKE_OP=0x5 FUTEX_CMP_REQUEUE=0x4
    FUTEX_REQUEUE=0x3 FUTEX_FD=0x2 FUTEX_WAKE=0x1 FUTEX_WAIT=0x0
poll_flags: POLLIN=0x1 POLLPRI=0x2 POLLOUT=0x4 POLLRDHUP=0x8 POLLERR=0x10 POLLHUP=0x20
    POLLNVAL=0x40 POLLRDNORM=0x80 POLLRDBAND=0x100 POLLWRNORM=0x200 POLLWRBAND=0x400
mount_flags: RDONLY=0x1 NOSUID=0x2 NODEV=0x4 NOEXEC=0x8 SYNCHRONOUS=0x10 REMOUNT=0x20
    MANDLOCK=0x40 DIRSYNC=0x80 NOATIME=0x400 NODIRATIME=0x800 BIND=0x1000 MOVE=0x2000 REC=0x4000
    SILENT=0x8000 POSIXACL=0x10000 UNBINDABLE=0x20000 PRIVATE=0x40000 SLAVE=0x80000
    SHARED=0x100000 RELATIME=0x200000 KERNMOUNT=0x400000 I_VERSION=0x800000
    STRICTATIME=0x1000000 LAZYTIME=0x2000000 NOSEC=0x10000000 BORN=0x20000000 ACTIVE=0x40000000
    NOUSER=0x80000000
umount_flags: FORCE=0x1 DETACH=0x2 EXPIRE=0x4 NOFOLLOW=0x8
lseek_whence: SEEK_END=0x2 SEEK_CUR=0x1 SEEK_SET=0x0
shutdown_how: SHUT_RDWR=0x2 SHUT_WR=0x1 SHUT_RD=0x0
rlimit_resources: RLIMIT_UNKNOWN=0xff RLIMIT_RTTIME=0xf RLIMIT_RTPRIO=0xe RLIMIT_NICE=0xd
    RLIMIT_MSGQUEUE=0xc RLIMIT_SIGPENDING=0xb RLIMIT_LOCKS=0xa RLIMIT_AS=0x9 RLIMIT_MEMLOCK=0x8
    RLIMIT_NOFILE=0x7 RLIMIT_NPROC=0x6 RLIMIT_RSS=0x5 RLIMIT_CORE=0x4 RLIMIT_STACK=0x3
    RLIMIT_DATA=0x2 RLIMIT_FSIZE=0x1 RLIMIT_CPU=0x0
fcntl_commands: F_GETPIPE_SZ=0x1d F_SETPIPE_SZ=0x1c F_NOTIFY=0x1b F_DUPFD_CLOEXEC=0x1a
    F_CANCELLK=0x19 F_GETLEASE=0x18 F_SETLEASE=0x17 F_GETOWN_EX=0x16 F_SETOWN_EX=0x15
    F_SETLKW64=0x13 F_SETLK64=0x12 F_GETLK64=0x11 F_GETSIG=0xf F_SETSIG=0xd F_GETOWN=0xc
    F_SETOWN=0xa F_SETLKW=0x9 F_SETLK=0x8 F_GETLK=0x6 F_SETFL=0x5 F_GETFL=0x4 F_SETFD=0x3
    F_GETFD=0x2 F_DUPFD=0x1 F_OFD_GETLK=0x1e F_OFD_SETLK=0x1f F_OFD_SETLKW=0x20 UNKNOWN=0x0
sockopt_levels: SOL_SOCKET=0x1 SOL_TCP=0x2 UNKNOWN=0x0
sockopt_options: SO_COOKIE=0x35 SO_MEMINFO=0x34 SO_PEERGROUPS=0x33 SO_ATTACH_BPF=0x32
    SO_INCOMING_CPU=0x31 SO_BPF_EXTENSIONS=0x30 SO_MAX_PACING_RATE=0x2f SO_BUSY_POLL=0x2e
    SO_SELECT_ERR_QUEUE=0x2d SO_LOCK_FILTER=0x2c SO_NOFCS=0x2b SO_PEEK_OFF=0x2a
    SO_WIFI_STATUS=0x29 SO_RXQ_OVFL=0x28 SO_DOMAIN=0x27 SO_PROTOCOL=0x26 SO_TIMESTAMPING=0x25
    SO_MARK=0x24 SO_TIMESTAMPNS=0x23 SO_PASSSEC=0x22 SO_PEERSEC=0x1f SO_ACCEPTCONN=0x1e
    SO_TIMESTAMP=0x1d SO_PEERNAME=0x1c SO_DETACH_FILTER=0x1b SO_ATTACH_FILTER=0x1a
    SO_BINDTODEVICE=0x19 SO_SECURITY_ENCRYPTION_NETWORK=0x18
    SO_SECURITY_ENCRYPTION_TRANSPORT=0x17 SO_SECURITY_AUTHENTICATION=0x16 SO_SNDTIMEO=0x15
    SO_RCVTIMEO=0x14 SO_SNDLOWAT=0x13 SO_RCVLOWAT=0x12 SO_PEERCRED=0x11 SO_PASSCRED=0x10
    SO_REUSEPORT=0xf SO_BSDCOMPAT=0xe SO_LINGER=0xd SO_PRIORITY=0xc SO_NO_CHECK=0xb
    SO_OOBINLINE=0xa SO_KEEPALIVE=0x9 SO_RCVBUFFORCE=0x21 SO_SNDBUFFORCE=0x20 SO_RCVBUF=0x8
    SO_SNDBUF=0x7 SO_BROADCAST=0x6 SO_DONTROUTE=0x5 SO_ERROR=0x4 SO_TYPE=0x3 SO_REUSEADDR=0x2
    SO_DEBUG=0x1 UNKNOWN=0x0
ptrace_requests: PTRACE_SINGLEBLOCK=0x26 PTRACE_SYSEMU_SINGLESTEP=0x25 PTRACE_SYSEMU=0x24
    PTRACE_ARCH_PRCTL=0x23 PTRACE_SET_THREAD_AREA=0x22 PTRACE_GET_THREAD_AREA=0x21
    PTRACE_OLDSETOPTIONS=0x20 PTRACE_SETFPXREGS=0x1f PTRACE_GETFPXREGS=0x1e
    PTRACE_SETFPREGS=0x1d PTRACE_GETFPREGS=0x1c PTRACE_SETREGS=0x1b PTRACE_GETREGS=0x1a
    PTRACE_SETSIGMASK=0x19 PTRACE_GETSIGMASK=0x18 PTRACE_PEEKSIGINFO=0x17 PTRACE_LISTEN=0x16
    PTRACE_INTERRUPT=0x15 PTRACE_SEIZE=0x14 PTRACE_SETREGSET=0x13 PTRACE_GETREGSET=0x12
    PTRACE_SETSIGINFO=0x11 PTRACE_GETSIGINFO=0x10 PTRACE_GETEVENTMSG=0xf PTRACE_SETOPTIONS=0xe
    PTRACE_SYSCALL=0xd PTRACE_DETACH=0xc PTRACE_ATTACH=0xb PTRACE_SINGLESTEP=0xa PTRACE_KILL=0x9
    PTRACE_CONT=0x8 PTRACE_POKEUSR=0x7 PTRACE_POKEDATA=0x6 PTRACE_POKETEXT=0x5
    PTRACE_PEEKUSR=0x4 PTRACE_PEEKDATA=0x3 PTRACE_PEEKTEXT=0x2 PTRACE_TRACEME=0x1
    PTRACE_UNKNOWN=0x0
prot_flags: PROT_READ=0x1 PROT_WRITE=0x2 PROT_EXEC=0x4 PROT_SEM=0x8 PROT_GROWSDOWN=0x10
    PROT_GROWSUP=0x20 PROT_SAO=0x40 PROT_NONE=0x0
mmap_flags: MAP_SHARED=0x1 MAP_PRIVATE=0x2 MAP_FIXED=0x4 MAP_ANONYMOUS=0x8 MAP_32BIT=0x10
    MAP_RENAME=0x20 MAP_NORESERVE=0x40 MAP_POPULATE=0x80 MAP_NONBLOCK=0x100 MAP_GROWSDOWN=0x200
    MAP_DENYWRITE=0x400 MAP_EXECUTABLE=0x800 MAP_INHERIT=0x1000 MAP_FILE=0x2000
    MAP_LOCKED=0x4000
splice_flags: SPLICE_F_MOVE=0x1 SPLICE_F_NONBLOCK=0x2 SPLICE_F_MORE=0x4 SPLICE_F_GIFT=0x8
quotactl_dqi_flags: DQF_NONE=0x1 V1_DQF_RSQUASH=0x2
quotactl_cmds: Q_QUOTAON=0x1 Q_QUOTAOFF=0x2 Q_GETFMT=0x4 Q_GETINFO=0x8 Q_SETINFO=0x10
    Q_GETQUOTA=0x20 Q_SETQUOTA=0x40 Q_SYNC=0x80 Q_XQUOTAON=0x100 Q_XQUOTAOFF=0x200
    Q_XGETQUOTA=0x400 Q_XSETQLIM=0x800 Q_XGETQSTAT=0x1000 Q_XQUOTARM=0x2000 Q_XQUOTASYNC=0x4000
quotactl_types: USRQUOTA=0x1 GRPQUOTA=0x2
quotactl_quota_fmts: QFMT_NOT_USED=0x1 QFMT_VFS_OLD=0x2 QFMT_VFS_V0=0x4 QFMT_VFS_V1=0x8
semop_flags: IPC_NOWAIT=0x1 SEM_UNDO=0x2
semget_flags: IPC_EXCL=0x4000 IPC_CREAT=0x2000
semctl_commands: IPC_STAT=0x1 IPC_SET=0x2 IPC_RMID=0x4 IPC_INFO=0x8 SEM_INFO=0x10 SEM_STAT=0x20
    GETALL=0x40 GETNCNT=0x80 GETPID=0x100 GETVAL=0x200 GETZCNT=0x400 SETALL=0x800 SETVAL=0x1000
access_flags: F_OK=0x0 R_OK=0x4 W_OK=0x2 X_OK=0x1
pf_flags: PROTECTION_VIOLATION=0x1 PAGE_NOT_PRESENT=0x2 WRITE_ACCESS=0x4 READ_ACCESS=0x8
    USER_FAULT=0x10 SUPERVISOR_FAULT=0x20 RESERVED_PAGE=0x40 INSTRUCTION_FETCH=0x80
unlinkat_flags: AT_REMOVEDIR=0x200
linkat_flags: AT_SYMLINK_FOLLOW=0x400 AT_EMPTY_PATH=0x1000
chmod_mode: S_IXOTH=0x1 S_IWOTH=0x2 S_IROTH=0x4 S_IXGRP=0x8 S_IWGRP=0x10 S_IRGRP=0x20
    S_IXUSR=0x40 S_IWUSR=0x80 S_IRUSR=0x100 S_ISVTX=0x200 S_ISGID=0x400 S_ISUID=0x800
renameat2_flags: RENAME_NOREPLACE=0x1 RENAME_EXCHANGE=0x2 RENAME_WHITEOUT=0x4
openat2_flags: RESOLVE_BENEATH=0x1 RESOLVE_IN_ROOT=0x2 RESOLVE_NO_MAGICLINKS=0x4
    RESOLVE_NO_SYMLINKS=0x8 RESOLVE_NO_XDEV=0x10 RESOLVE_CACHED=0x20
execve_flags: EXE_WRITABLE=0x1
execveat_flags: AT_EMPTY_PATH=0x1 AT_SYMLINK_NOFOLLOW=0x2
"""

SYSCALLS = """
<unknown> restart_syscall exit read write open close creat link unlink chdir time mknod chmod
stat lseek getpid mount ptrace alarm fstat pause utime access sync kill rename mkdir rmdir dup
pipe times brk acct ioctl fcntl setpgid umask chroot ustat dup2 getppid getpgrp setsid
sethostname setrlimit getrusage gettimeofday settimeofday symlink lstat readlink uselib swapon
reboot mmap munmap truncate ftruncate fchmod getpriority setpriority statfs fstatfs syslog
setitimer getitimer uname vhangup wait4 swapoff sysinfo fsync setdomainname adjtimex mprotect
init_module delete_module quotactl getpgid fchdir sysfs personality getdents select flock msync
readv writev getsid fdatasync mlock munlock mlockall munlockall sched_setparam sched_getparam
sched_setscheduler sched_getscheduler sched_yield sched_get_priority_max sched_get_priority_min
sched_rr_get_interval nanosleep mremap poll prctl rt_sigaction rt_sigprocmask rt_sigpending
rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend getcwd capget capset sendfile getrlimit lchown
getuid getgid geteuid getegid setreuid setregid getgroups setgroups fchown setresuid getresuid
setresgid getresgid chown setuid setgid setfsuid setfsgid pivot_root mincore madvise gettid
setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
removexattr lremovexattr fremovexattr tkill futex sched_setaffinity sched_getaffinity
set_thread_area get_thread_area io_setup io_destroy io_getevents io_submit io_cancel exit_group
epoll_create epoll_ctl epoll_wait remap_file_pages set_tid_address timer_create timer_settime
timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime clock_getres
clock_nanosleep tgkill utimes mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify
mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set ioprio_get inotify_init
inotify_add_watch inotify_rm_watch openat mkdirat mknodat fchownat futimesat unlinkat renameat
linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare set_robust_list
get_robust_list splice tee vmsplice getcpu epoll_pwait utimensat signalfd timerfd_create eventfd
timerfd_settime timerfd_gettime signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv
pwritev rt_tgsigqueueinfo perf_event_open fanotify_init prlimit64 clock_adjtime syncfs setns
getdents64 socket bind connect listen accept getsockname getpeername socketpair sendto recvfrom
shutdown setsockopt getsockopt sendmsg sendmmsg recvmsg recvmmsg accept4 semop semget semctl
msgsnd msgrcv msgget msgctl shmdt shmget shmctl statfs64 fstatfs64 fstatat64 sendfile64
ugetrlimit bdflush sigprocmask ipc socketcall stat64 lstat64 fstat64 fcntl64 mmap2 newselect
sgetmask ssetmask sigpending olduname umount signal nice stime llseek waitpid pread64 pwrite64
arch_prctl shmat sigreturn fallocate newfstatat process_vm_readv process_vm_writev fork vfork
setuid getuid setgid geteuid getgid setresuid setresgid getresuid getresgid finit_module bpf
seccomp sigaltstack getrandom fadvise64 renameat2 userfaultfd openat2 umount2 execve execveat
copy_file_range clone clone3
""".split()


def _param(tok: str) -> PParam:
    name, _, rest = tok.partition(":")
    name = name.replace("~", " ")  # a space in a name (pluginevent's "plugin ID")
    parts = rest.split("/")
    fmt = PF[parts[1].upper()] if len(parts) > 1 else PF.NA
    table, dirfd = "", -1
    if len(parts) > 2:
        if parts[2].startswith("dirfd"):
            dirfd = int(parts[2][5:])
        else:
            table = parts[2]
    return PParam(name, PT[parts[0].upper()], fmt, table, dirfd)


def _events() -> list[PEvent | None]:
    table: list[PEvent | None] = [None] * PPM_EVENT_MAX
    rows: list[str] = []
    for line in EVENTS.strip("\n").splitlines():
        if line.startswith(" ") and rows:
            rows[-1] += line  # a continuation: more parameters
        else:
            rows.append(line)
    for line in rows:
        toks = line.split()
        i, name, cat, flags = int(toks[0]), toks[1], toks[2], toks[3]
        fl = frozenset() if flags == "-" else frozenset(flags.split(","))
        table[i] = PEvent(i, name, cat, fl, tuple(_param(t) for t in toks[4:]))
    return table


def _flags() -> dict[str, tuple[tuple[str, int], ...]]:
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    name = ""
    rows: list[tuple[str, int]] = []
    for line in FLAGS_TEXT.strip().splitlines():
        if not line.startswith(" "):
            if name:
                out[name] = tuple(rows)
            name, _, line = line.partition(":")
            rows = []
        for tok in line.split():
            n, _, v = tok.partition("=")
            rows.append((n, int(v, 16)))
    if name:
        out[name] = tuple(rows)
    return out


PPM_EVENTS: Final = _events()
PPM_FLAGS: Final = _flags()

DYNAMIC_TEXT = """
sockopt_dynamic_param: bytebuf/hex errno/dec uint32/dec uint64/dec reltime/dec
ptrace_dynamic_param: uint64/hex sigtype/dec
bpf_dynamic_param: fd/dec errno/dec
"""


def _dynamic() -> dict[str, tuple[PParam, ...]]:
    out = {}
    for line in DYNAMIC_TEXT.strip().splitlines():
        name, _, rows = line.partition(":")
        out[name] = tuple(_param(f"value:{row}") for row in rows.split())
    return out


PPM_DYNAMIC: Final = _dynamic()


def ppm_event(etype: int) -> PEvent | None:
    """The table row of a PPM event type, or None for a type this table does not know."""
    if 0 <= etype < PPM_EVENT_MAX:
        e = PPM_EVENTS[etype]
        if e is not None and "unused" not in e.flags:
            return e
    return None
