/* The one header shared by the eBPF programs and the C++ code.
 *
 * Everything the kernel and user space exchange is declared here, with
 * fixed-width __u* types and _Static_assert sizes, so both sides agree on the
 * layout by construction. Include it from BPF C and from C++ alike.
 */
#ifndef BPFIX_ABI_H
#define BPFIX_ABI_H

#ifdef __cplusplus
#include <linux/types.h>
#define BPFIX_STATIC_ASSERT static_assert
#else
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#define BPFIX_STATIC_ASSERT _Static_assert
#endif

/* IP versions as carried in the key. */
#define BPFIX_IPV4 4
#define BPFIX_IPV6 6

/* IP protocol numbers the meters treat specially. */
#define BPFIX_PROTO_ICMP 1
#define BPFIX_PROTO_TCP 6
#define BPFIX_PROTO_UDP 17
#define BPFIX_PROTO_DCCP 33
#define BPFIX_PROTO_ICMPV6 58
#define BPFIX_PROTO_SCTP 132
#define BPFIX_PROTO_UDPLITE 136

/* TCP flag bits as carried in tcpControlBits (flags byte, NS as 0x100). */
#define BPFIX_TCP_FIN 0x01
#define BPFIX_TCP_SYN 0x02
#define BPFIX_TCP_RST 0x04
#define BPFIX_TCP_ACK 0x10

/* Observation direction (IANA flowDirection: 0 ingress, 1 egress). */
#define BPFIX_DIR_INGRESS 0
#define BPFIX_DIR_EGRESS 1

/* The uniflow key. IPv4 addresses sit in the first 4 bytes of the 16-byte
 * address fields, the rest zero, so one key serves both families. For ICMP
 * and ICMPv6 the ports are zero and icmp_type_code holds type << 8 | code.
 * A VLAN id of 0 means untagged; inner_vlan_id is the customer tag of QinQ.
 * Multi-byte fields are in host byte order. */
struct bpfix_flow_key {
    __u8 src_addr[16];
    __u8 dst_addr[16];
    __u16 src_port;
    __u16 dst_port;
    __u16 icmp_type_code;
    __u16 vlan_id;
    __u16 inner_vlan_id;
    __u8 protocol;
    __u8 ip_version;
    __u32 ifindex;
    __u8 direction;
    __u8 pad[3];
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_flow_key) == 52, "bpfix_flow_key layout");

/* Per-CPU packet and byte totals seen by a TC program (the minimal datapath
 * counter; the flow maps arrive with live metering). Index 0 ingress,
 * index 1 egress. */
struct bpfix_if_counters {
    __u64 packets;
    __u64 bytes;
};
BPFIX_STATIC_ASSERT(sizeof(struct bpfix_if_counters) == 16, "bpfix_if_counters layout");

#endif /* BPFIX_ABI_H */
