/*
 * ktrace probe: every syscall's enter and exit, process exits, and the ends of TCP connections as
 * the kernel knows them once established (a client's for its connect(), a server's for the fd it
 * accepted), into one BPF ring buffer.
 *
 * Configured with -D cflags by loader.py, only with what the verifier must see as constants:
 *   KT_PATHMAX       path and string bytes kept per segment
 *   KT_SEGMAX        power of two > every per-segment limit
 *   KT_RING_BYTES    ring buffer size at compile time; the loader sets the real one at map creation
 * Everything that changes from run to run is in the kt_config map instead (ktrace's own pid,
 * snaplen, which filters are on), so the compiled program can be cached (cache.py).
 *
 * Only tracepoint arguments, helpers and user memory are read: no kernel struct whose layout
 * changes between kernel versions (a socket's address is a key, never read through). The saved
 * user registers are x86_64's ptrace ABI layout.
 * Records without payload are reserved in place; records with payload are built in a per-CPU
 * scratch buffer and copied once. Nothing wakes the consumer: it polls.
 */
#include "ktrace_gen.h"

/* struct pt_regs from r10 to orig_ax (ptrace ABI, offsets 56..128). */
struct kt_argregs {
    u64 r10, r9, r8, ax, cx, dx, si, di, orig_ax;
};
#define KT_REGS_OFF 56
/* The same registers, then ip and cs (offsets 128..144): cs tells a 64-bit syscall of a user thread
 * from a kernel or io_uring worker thread, whose saved registers are zeroed at creation. */
struct kt_sysregs {
    struct kt_argregs a;
    u64 ip, cs;
};
#define KT_USER_CS 0x33

struct kt_big {
    struct kt_rec h;
    u8 data[4 * KT_SEGMAX]; /* room for any masked offset + masked length */
};

/* struct iovec, struct msghdr and struct mmsghdr of the x86_64 user ABI. */
struct kt_iovec {
    u64 base;
    u64 len;
};
struct kt_msghdr {
    u64 name;
    u32 namelen;
    u32 pad;
    u64 iov;
    u64 iovlen;
    u64 control;
    u64 controllen;
    u32 flags;
    u32 pad2;
};

#ifndef KT_RING_BYTES
#define KT_RING_BYTES (64 * 4096)
#endif

/* Filter bits of kt_config.filters. */
#define KT_CF_PIDS 1
#define KT_CF_CGROUPS 2
#define KT_CF_COMMS 4

/* The run's settings, one entry written by loader.py before any event is wanted. */
struct kt_config {
    u32 self_tgid; /* ktrace's own process, never traced */
    u32 snaplen;   /* I/O data bytes kept per event (-s), <= KT_SEGMAX - 1 */
    u32 filters;   /* KT_CF_*: which filter maps are in force */
    u32 pad;
};

BPF_RINGBUF_OUTPUT(kt_events, KT_RING_BYTES / 4096);
BPF_ARRAY(kt_config, struct kt_config, 1);
BPF_PERCPU_ARRAY(kt_stats, u64, KT_NSTATS);
BPF_ARRAY(kt_spec, struct kt_spec, KT_EVT_MAX);
BPF_PERCPU_ARRAY(kt_scratch, struct kt_big, 1);
/* The filter maps always exist (the program is the same whatever the filter); a KT_CF_* bit says
 * whether one is in force, and the loader makes unused ones tiny. */
BPF_HASH(kt_pids, u32, u8, 4096);
/* Container pushdown (tracer/enrich/cgroupid.py): cgroup v2 id -> user space's verdict, 1 = a
 * wanted container's cgroup, 0 = not wanted. An id without a verdict (a cgroup created since the
 * last look) passes, and is noted in kt_cgnew with the tgid seen in it so user space can classify
 * it: nothing the filter could match is dropped while a new cgroup waits for its verdict. */
#ifndef KT_CGROUPS_MAX
#define KT_CGROUPS_MAX 16384
#endif
BPF_HASH(kt_cgroups, u64, u8, KT_CGROUPS_MAX);
BPF_HASH(kt_cgnew, u64, u32, 1024);
struct kt_comm {
    char c[16];
};
BPF_HASH(kt_comms, struct kt_comm, u8, 256);
/* The comm filter's last verdicts, per CPU, by thread (slot = tid % KT_COMM_SLOTS): a thread whose
 * name is the one its slot remembers gets the slot's verdict without the 16-byte hash lookup (bench:
 * that lookup was most of the ~100 ns the filter added to every event of every process). The name
 * is compared each time, so an exec, prctl(PR_SET_NAME) or a write to /proc/PID/comm is seen at
 * once; per CPU, so no two programs ever write one slot at the same time. */
#define KT_COMM_SLOTS 1024
struct kt_comm_seen {
    u32 tid;
    u32 verdict;
    u64 c[2];
};
BPF_PERCPU_ARRAY(kt_comm_seen, struct kt_comm_seen, KT_COMM_SLOTS);
/* Client TCP connections (kt_tp__sock__inet_sock_set_state): the fd each thread is connecting,
 * from connect's enter to its exit, and each connecting socket's owner until it is established. */
struct kt_conn {
    u32 tid;
    u32 pid;
    u32 fd;
    u32 pad;
};
BPF_TABLE("lru_hash", u32, u32, kt_connecting, 4096); /* LRU: a thread killed inside connect() leaves no leak */
BPF_TABLE("lru_hash", u64, struct kt_conn, kt_conns, 4096);
/* A TCP connection's ends as inet_sock_set_state gives them (ports in host order). */
struct kt_ends {
    u16 family;
    u16 lport;
    u16 rport;
    u16 pad;
    u8 laddr[KT_ADDR_BYTES];
    u8 raddr[KT_ADDR_BYTES]; /* right after laddr: a record's payload is both, copied at once */
};
/* Accepted TCP connections (kt_raw__sock_*_length): a server's socket is established in a softirq,
 * before the program accepts it; accept(fd, NULL, NULL) names neither end, and the program may
 * have closed the socket before ktrace can read it. No tracepoint shows the socket on its way
 * through accept(), so its ends wait here, by socket address, for its first send or receive: a
 * syscall on its fd. LRU: a socket served by io_uring or the kernel, never by such a syscall,
 * leaves no leak (nor does one closed: its entry goes when it reaches CLOSE). */
BPF_TABLE("lru_hash", u64, struct kt_ends, kt_estab, 8192);
/* How many entries kt_estab may hold (never fewer: LRU evictions are not counted): while none, a
 * socket's send or receive costs an array read instead of a hash lookup. */
BPF_ARRAY(kt_estab_n, s64, 1);

static __always_inline void kt_estab_count(s64 delta)
{
    u32 zero = 0;
    s64 *n = kt_estab_n.lookup(&zero);
    if (n)
        __sync_fetch_and_add(n, delta);
}

static __always_inline void kt_estab_forget(u64 *sk)
{
    if (kt_estab.delete(sk) == 0)
        kt_estab_count(-1);
}

static __always_inline void kt_count(u32 slot)
{
    u64 *v = kt_stats.lookup(&slot);
    if (v)
        (*v)++;
}

/* Pushdown: is this thread one the user's filter can match? Process life-cycle events pass the
 * comm filter: an exec may give the process the name the filter wants. */
static __always_inline struct kt_config *kt_wanted(u64 pid_tgid, struct kt_spec *spec)
{
    if (!spec || !spec->interest)
        return 0;
    u32 zero = 0;
    struct kt_config *cfg = kt_config.lookup(&zero); /* an array lookup: inlined by the verifier */
    if (!cfg || (pid_tgid >> 32) == cfg->self_tgid)
        return 0;
    u32 filters = cfg->filters;
    if (!filters)
        return cfg;
    if (filters & KT_CF_PIDS) {
        u32 tgid = pid_tgid >> 32;
        u32 tid = (u32)pid_tgid;
        if (!kt_pids.lookup(&tgid) && !kt_pids.lookup(&tid))
            return 0;
    }
    if (filters & KT_CF_CGROUPS) {
        u64 cg = bpf_get_current_cgroup_id();
        u8 *verdict = kt_cgroups.lookup(&cg);
        if (!verdict) {
            u32 seen = pid_tgid >> 32;
            kt_cgnew.insert(&cg, &seen);
        } else if (!*verdict) {
            return 0;
        }
    }
    if ((filters & KT_CF_COMMS) && !spec->always) {
        struct kt_comm comm = {};
        bpf_get_current_comm(&comm.c, sizeof(comm.c));
        u64 c0 = 0, c1 = 0;
        __builtin_memcpy(&c0, comm.c, 8);
        __builtin_memcpy(&c1, comm.c + 8, 8);
        u32 tid = (u32)pid_tgid;
        u32 slot = tid & (KT_COMM_SLOTS - 1);
        struct kt_comm_seen *seen = kt_comm_seen.lookup(&slot);
        if (seen && seen->tid == tid && seen->c[0] == c0 && seen->c[1] == c1) {
            if (!seen->verdict)
                return 0;
        } else {
            u32 ok = kt_comms.lookup(&comm) != 0;
            if (seen) {
                seen->tid = tid;
                seen->verdict = ok;
                seen->c[0] = c0;
                seen->c[1] = c1;
            }
            if (!ok)
                return 0;
        }
    }
    return cfg;
}

static __always_inline void kt_head(struct kt_rec *r, u64 pid_tgid, u32 evt, s64 ret,
                                    struct kt_argregs *g, u8 nregs)
{
    r->ts = bpf_ktime_get_ns();
    r->tid = (u32)pid_tgid;
    r->pid = pid_tgid >> 32;
    r->evt = evt;
    r->cpu = bpf_get_smp_processor_id();
    r->len = sizeof(struct kt_rec);
    r->ret = ret;
    /* Registers past the syscall's arguments hold leftovers: zero, they compress. */
    r->a[0] = nregs > 0 ? g->di : 0;
    r->a[1] = nregs > 1 ? g->si : 0;
    r->a[2] = nregs > 2 ? g->dx : 0;
    r->a[3] = nregs > 3 ? g->r10 : 0;
    r->a[4] = nregs > 4 ? g->r8 : 0;
    r->a[5] = nregs > 5 ? g->r9 : 0;
    r->l0 = 0;
    r->l1 = 0;
    r->flags = 0;
}

static __always_inline u64 kt_reg(struct kt_rec *r, u8 i)
{
    switch (i) {
    case 0: return r->a[0];
    case 1: return r->a[1];
    case 2: return r->a[2];
    case 3: return r->a[3];
    case 4: return r->a[4];
    default: return r->a[5];
    }
}

/* Copy up to `want` bytes of user memory; returns the bytes kept. */
static __always_inline u32 kt_copy(u8 *dst, u64 src, u64 want, u32 limit, u32 *flags, u32 trunc)
{
    if (want > limit) {
        want = limit;
        *flags |= trunc;
    }
    want &= (KT_SEGMAX - 1);
    if (want == 0 || src == 0)
        return 0;
    if (bpf_probe_read_user(dst, want, (void *)src) < 0) {
        *flags |= KT_RF_FAULT;
        return 0;
    }
    return want;
}

/* Gather iovecs up to `total` bytes. */
static __always_inline u32 kt_iov(u8 *dst, u64 iovp, u64 cnt, u64 total, u32 snaplen, u32 *flags,
                                  u32 trunc)
{
    u32 off = 0;
    if (total > snaplen) {
        total = snaplen;
        *flags |= trunc;
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (i >= cnt || off >= total)
            break;
        struct kt_iovec v = {};
        if (bpf_probe_read_user(&v, sizeof(v), (void *)(iovp + i * sizeof(v))) < 0)
            break;
        u64 n = v.len;
        if (n > total - off)
            n = total - off;
        n &= (KT_SEGMAX - 1);
        off &= (KT_SEGMAX - 1);
        if (n && bpf_probe_read_user(dst + off, n, (void *)v.base) == 0)
            off += n;
    }
    return off;
}

static __always_inline u32 kt_argv(u8 *dst, u64 argvp)
{
    u32 off = 0;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        u64 p = 0;
        if (bpf_probe_read_user(&p, sizeof(p), (void *)(argvp + i * 8)) < 0 || p == 0)
            break;
        off &= (KT_SEGMAX - 1);
        if (off >= KT_PATHMAX)
            break;
        long n = bpf_probe_read_user_str(dst + off, KT_SEGMAX - KT_PATHMAX, (void *)p);
        if (n <= 0)
            break;
        off += n;
    }
    return off;
}

/* snaplen, read where it is used and masked (the loader keeps it below KT_SEGMAX): a bound the
 * verifier sees at once, which cuts its work on sys_exit by half or more. */
static __always_inline u32 kt_snaplen(struct kt_config *cfg)
{
    return cfg->snaplen & (KT_SEGMAX - 1);
}

/* Fill one segment; MSG/MMSG fill both. `seg` and `at_exit` are constants at every call site, so
 * the compiler drops the kinds the schema never uses there (the loops of iovecs and argv are the
 * costly ones): enters capture strings, argv and sockaddrs only; argv only ever goes in segment 1
 * (execve's), iovecs and messages only in segment 0. tests/test_schema.py holds the schema to it. */
static __always_inline void kt_segment(struct kt_big *b, struct kt_seg_spec *s, int seg, int at_exit,
                                       struct kt_config *cfg)
{
    struct kt_rec *r = &b->h;
    u8 kind = s->kind;
    if (!at_exit && kind != KT_CK_STR && kind != KT_CK_ARGV && kind != KT_CK_SOCKADDR)
        return;
    if (at_exit && kind == KT_CK_ARGV)
        return;
    if (seg && (kind == KT_CK_IOV || kind == KT_CK_MSG || kind == KT_CK_MMSG))
        return;
    if (!seg && kind == KT_CK_ARGV)
        return;
    u32 off = seg ? (r->l0 & (KT_SEGMAX - 1)) : 0;
    u8 *dst = b->data + off;
    u64 p = kt_reg(r, s->arg);
    u64 want = 0;
    u32 trunc = seg ? KT_RF_TRUNC1 : KT_RF_TRUNC0;
    u32 n = 0;
    long sn;

    switch (s->lkind) {
    case KT_LEN_RET: want = r->ret > 0 ? r->ret : 0; break;
    case KT_LEN_REG: want = kt_reg(r, s->lreg); break;
    case KT_LEN_PTR: {
        u32 v = 0;
        u64 lp = kt_reg(r, s->lreg);
        if (lp)
            bpf_probe_read_user(&v, sizeof(v), (void *)lp);
        want = v;
        break;
    }
    case KT_LEN_CONST: want = s->lconst; break;
    }

    switch (kind) {
    case KT_CK_STR:
        if (!p)
            break;
        sn = bpf_probe_read_user_str(dst, KT_PATHMAX, (void *)p);
        if (sn > 0)
            n = sn - 1;
        else
            r->flags |= KT_RF_FAULT;
        break;
    case KT_CK_BUF:
        n = kt_copy(dst, p, want, kt_snaplen(cfg), &r->flags, trunc);
        break;
    case KT_CK_SOCKADDR:
    case KT_CK_SOCKADDR_PLEN:
    case KT_CK_RAW:
        n = kt_copy(dst, p, want, 128, &r->flags, trunc);
        break;
    case KT_CK_IOV:
        n = kt_iov(dst, p, kt_reg(r, 2), want, kt_snaplen(cfg), &r->flags, trunc);
        break;
    case KT_CK_ARGV:
        n = kt_argv(dst, p);
        break;
    case KT_CK_COMM:
        bpf_get_current_comm(dst, 16);
        n = 16;
        break;
    case KT_CK_MSG:
    case KT_CK_MMSG: {
        struct kt_msghdr m = {};
        u32 mlen = 0;
        if (!p || bpf_probe_read_user(&m, sizeof(m), (void *)p) < 0) {
            r->flags |= KT_RF_FAULT;
            break;
        }
        if (s->kind == KT_CK_MMSG) {
            bpf_probe_read_user(&mlen, sizeof(mlen), (void *)(p + sizeof(m)));
            want = r->ret > 0 ? mlen : 0;
        }
        n = kt_copy(dst, m.name, m.namelen, 128, &r->flags, trunc);
        r->l0 = n;
        u8 *dst2 = b->data + (n & (KT_SEGMAX - 1));
        r->l1 = kt_iov(dst2, m.iov, m.iovlen, want, kt_snaplen(cfg), &r->flags, KT_RF_TRUNC1);
        return;
    }
    }
    if (seg)
        r->l1 = n;
    else
        r->l0 = n;
}

static __always_inline int kt_emit(struct kt_spec *spec, struct kt_config *cfg, u64 pid_tgid, u32 evt,
                                   s64 ret, struct kt_argregs *g, int at_exit)
{
    if (spec->seg[0].kind == 0) {
        struct kt_rec *r = kt_events.ringbuf_reserve(sizeof(struct kt_rec));
        if (!r) {
            kt_count(KT_STAT_DROPS_BUFFER);
            return 0;
        }
        kt_head(r, pid_tgid, evt, ret, g, spec->nregs);
        kt_events.ringbuf_submit(r, BPF_RB_NO_WAKEUP);
        kt_count(KT_STAT_EVENTS);
        return 0;
    }

    u32 zero = 0;
    struct kt_big *b = kt_scratch.lookup(&zero);
    if (!b)
        return 0;
    kt_head(&b->h, pid_tgid, evt, ret, g, spec->nregs);
    struct kt_seg_spec s0 = spec->seg[0];
    struct kt_seg_spec s1 = spec->seg[1];
    kt_segment(b, &s0, 0, at_exit, cfg);
    if (s1.kind)
        kt_segment(b, &s1, 1, at_exit, cfg);
    if (b->h.flags & KT_RF_FAULT)
        kt_count(KT_STAT_FAULTS);
    u64 size = (sizeof(struct kt_rec) + b->h.l0 + b->h.l1 + 7) & ~7ULL;
    if (size > sizeof(struct kt_big))
        size = sizeof(struct kt_big);
    b->h.len = size;
    if (kt_events.ringbuf_output(b, size, BPF_RB_NO_WAKEUP) < 0)
        kt_count(KT_STAT_DROPS_BUFFER);
    else
        kt_count(KT_STAT_EVENTS);
    return 0;
}

/* An EVT_CONNECTED or EVT_ACCEPTED record: an fd and both ends of its TCP connection. */
static __always_inline void kt_emit_ends(u64 pid_tgid, u32 evt, u32 fd, struct kt_ends *e)
{
    struct kt_rec *r = kt_events.ringbuf_reserve(sizeof(struct kt_rec) + 2 * KT_ADDR_BYTES);
    if (!r) {
        kt_count(KT_STAT_DROPS_BUFFER);
        return;
    }
    struct kt_argregs g = {};
    kt_head(r, pid_tgid, evt, 0, &g, 0);
    r->a[0] = fd;
    r->a[1] = e->family;
    r->a[2] = e->lport;
    r->a[3] = e->rport;
    r->l0 = 2 * KT_ADDR_BYTES;
    r->len = sizeof(struct kt_rec) + 2 * KT_ADDR_BYTES;
    __builtin_memcpy((u8 *)(r + 1), e->laddr, 2 * KT_ADDR_BYTES);
    kt_events.ringbuf_submit(r, BPF_RB_NO_WAKEUP);
    kt_count(KT_STAT_EVENTS);
}

RAW_TRACEPOINT_PROBE(sys_enter)
{
    u64 id = ctx->args[1];
    if (id >= KT_NSYSCALLS)
        return 0;
    u32 evt = id * 2;
    struct kt_spec *spec = kt_spec.lookup(&evt);
    u64 pid_tgid = bpf_get_current_pid_tgid();
    struct kt_config *cfg = kt_wanted(pid_tgid, spec);
    if (!cfg)
        return 0;
    struct kt_argregs g = {};
    bpf_probe_read_kernel(&g, sizeof(g), (void *)(ctx->args[0] + KT_REGS_OFF));
    if (id == KT_NR_CONNECT) {
        u32 tid = (u32)pid_tgid;
        u32 fd = g.di;
        kt_connecting.update(&tid, &fd);
    }
    return kt_emit(spec, cfg, pid_tgid, evt, 0, &g, 0);
}

RAW_TRACEPOINT_PROBE(sys_exit)
{
    struct kt_argregs g = {};
    bpf_probe_read_kernel(&g, sizeof(g), (void *)(ctx->args[0] + KT_REGS_OFF));
    if (g.orig_ax >= KT_NSYSCALLS)
        return 0;
    u32 evt = g.orig_ax * 2 + 1;
    struct kt_spec *spec = kt_spec.lookup(&evt);
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (g.orig_ax == KT_NR_CONNECT) {
        u32 tid = (u32)pid_tgid;
        kt_connecting.delete(&tid);
    }
    struct kt_config *cfg = kt_wanted(pid_tgid, spec);
    if (!cfg)
        return 0;
    return kt_emit(spec, cfg, pid_tgid, evt, (s64)ctx->args[1], &g, 1);
}

RAW_TRACEPOINT_PROBE(sched_process_exit)
{
    u32 evt = KT_EVT_PROCEXIT;
    struct kt_spec *spec = kt_spec.lookup(&evt);
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!kt_wanted(pid_tgid, spec))
        return 0;
    struct kt_rec *r = kt_events.ringbuf_reserve(sizeof(struct kt_rec));
    if (!r) {
        kt_count(KT_STAT_DROPS_BUFFER);
        return 0;
    }
    struct kt_argregs g = {};
    kt_head(r, pid_tgid, KT_EVT_PROCEXIT, 0, &g, 6);
    kt_events.ringbuf_submit(r, BPF_RB_NO_WAKEUP);
    kt_count(KT_STAT_EVENTS);
    return 0;
}

static __always_inline void kt_ends_of(struct kt_tp_inet_sock_set_state *a, struct kt_ends *e)
{
    e->family = a->family;
    e->lport = a->sport;
    e->rport = a->dport;
    if (a->family == KT_AF_INET) {
        __builtin_memcpy(e->laddr, a->saddr, 4);
        __builtin_memcpy(e->raddr, a->daddr, 4);
    } else {
        __builtin_memcpy(e->laddr, a->saddr_v6, KT_ADDR_BYTES);
        __builtin_memcpy(e->raddr, a->daddr_v6, KT_ADDR_BYTES);
    }
}

/* A TCP connection's ends, as the kernel knows them when it is established: ktrace reading the
 * socket afterwards finds it gone when the program closes it at once. A client: the connecting
 * thread enters SYN_SENT inside connect() (its fd is in kt_connecting); SYN_SENT -> ESTABLISHED may
 * run in any context (a softirq), so the socket's address ties the two. A server: SYN_RECV ->
 * ESTABLISHED, in a softirq; its ends wait in kt_estab. A regular tracepoint: its record is laid
 * out by the kernel (checked by the loader), no kernel struct is read. */
int kt_tp__sock__inet_sock_set_state(struct kt_tp_inet_sock_set_state *args)
{
    struct kt_tp_inet_sock_set_state a = {};
    bpf_probe_read_kernel(&a, sizeof(a), args);
    if (a.protocol != KT_IPPROTO_TCP)
        return 0;
    u64 sk = a.skaddr;
    if (a.newstate == KT_TCP_CLOSE)
        kt_estab_forget(&sk); /* soon freed: its address may come back as another socket */
    if (a.newstate == KT_TCP_SYN_SENT) {
        u64 pid_tgid = bpf_get_current_pid_tgid();
        u32 tid = (u32)pid_tgid;
        u32 *fd = kt_connecting.lookup(&tid);
        if (!fd)
            return 0;
        struct kt_conn c = {.tid = tid, .pid = pid_tgid >> 32, .fd = *fd};
        kt_conns.update(&sk, &c);
        return 0;
    }
    if (a.oldstate == KT_TCP_SYN_RECV) {
        if (a.newstate == KT_TCP_ESTABLISHED) {
            struct kt_ends e = {};
            kt_ends_of(&a, &e);
            if (kt_estab.insert(&sk, &e) == 0)
                kt_estab_count(1);
            else
                kt_estab.update(&sk, &e);
        }
        return 0;
    }
    if (a.oldstate != KT_TCP_SYN_SENT)
        return 0;
    struct kt_conn *cp = kt_conns.lookup(&sk);
    if (!cp)
        return 0;
    struct kt_conn c = *cp;
    kt_conns.delete(&sk);
    if (a.newstate != KT_TCP_ESTABLISHED)
        return 0;
    struct kt_ends e = {};
    kt_ends_of(&a, &e);
    kt_emit_ends(((u64)c.pid << 32) | c.tid, KT_EVT_CONNECTED, c.fd, &e);
    return 0;
}

/* A send or receive on a socket (raw tracepoints sock_send_length and sock_recv_length, Linux 6.3+,
 * first argument the socket). For a server socket still waiting in kt_estab, the first one runs
 * inside a syscall on its fd: the thread's saved user registers (bpf_task_pt_regs) give that fd,
 * and EVT_ACCEPTED names it, before that syscall's exit. Any other socket costs one hash lookup,
 * or only an array read while no server socket waits. */
static __always_inline int kt_sock_io(struct bpf_raw_tracepoint_args *ctx)
{
    u32 zero = 0;
    s64 *pending = kt_estab_n.lookup(&zero);
    if (!pending || !*pending)
        return 0;
    u64 sk = ctx->args[0];
    struct kt_ends *p = kt_estab.lookup(&sk);
    if (!p)
        return 0;
    struct kt_ends e = *p;
    kt_estab_forget(&sk); /* the first one decides, named or not: the rest take the lookup only */
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    u64 regs = (u64)bpf_task_pt_regs(task);
    struct kt_sysregs g = {};
    bpf_probe_read_kernel(&g, sizeof(g), (void *)(regs + KT_REGS_OFF));
    if (g.cs != KT_USER_CS || !KT_SOCK_IO_SYSCALL(g.a.orig_ax))
        return 0;
    u32 evt = KT_EVT_ACCEPTED;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!kt_wanted(pid_tgid, kt_spec.lookup(&evt)))
        return 0;
    kt_emit_ends(pid_tgid, KT_EVT_ACCEPTED, (u32)g.a.di, &e);
    return 0;
}

int kt_raw__sock_send_length(struct bpf_raw_tracepoint_args *ctx)
{
    return kt_sock_io(ctx);
}

int kt_raw__sock_recv_length(struct bpf_raw_tracepoint_args *ctx)
{
    return kt_sock_io(ctx);
}
