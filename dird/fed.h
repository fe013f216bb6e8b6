/*
 * fed.h - federation: this registry answering for users of other
 * domains by asking their registries, and other registries asking it.
 *
 * Outgoing (fed_lookup): a user of this registry looks up
 * bob@example.net.  The administrator's rule for example.net (dirctl
 * federation add) says whether and how its CA is accepted; the
 * domain's registry is found by its _irp._tcp SRV records; its CA is
 * fetched and judged by the rule (the pinned SHA-256, or a DANE-TA TLSA
 * record that DNSSEC validated); then the lookup is made over TLS that
 * verifies the registry by that CA, with this registry's own server
 * certificate as client certificate.  The answer carries the CA and the
 * basis of trust (irp_vouch).  Answers are kept for their validity (at
 * most federation_cache_max), failures for federation_negative_ttl, and
 * each user may cause at most federation_rate queries a minute.
 *
 * Incoming (fed_admit): another registry asks with "IRP-Domain: D" and
 * presents its server certificate followed by its CA.  It is answered
 * only when this registry has a rule for D that accepts that CA, the
 * certificate is a registry's issued by it, and D is within its
 * federation_inbound_rate.
 *
 * Thread safety: one struct fed serves every request thread.
 */
#ifndef FED_H
#define FED_H

#include <stddef.h>

#include "db.h"
#include "irp_wire.h"

struct reg;
struct reg_actor;
struct reg_err;
struct fed;

/* NULL with a sentence in errbuf (a DNS setting that can not be used). */
struct fed *fed_new(struct reg *r, char *errbuf, size_t errlen);
void fed_free(struct fed *f);

/*
 * The lookup answer for userid (normalised; its domain not ours) as
 * asker (a user id) asks it: *body is new (free()), *len bytes of JSON
 * (irp_user with its via).  fresh: do not answer from a kept answer
 * (Cache-Control: no-cache; refusals are still kept).  *cached says
 * whether the answer was a kept one.  -1 with e: 403
 * federation_refused, 404 unknown_user, 429, 502 (the other registry
 * or its DNS failed: the code says which), 503.
 */
int fed_lookup(struct fed *f, struct db *db, const char *userid,
    const char *asker, int fresh, char **body, size_t *len, int *cached,
    struct reg_err *e) __attribute__((warn_unused_result));

/*
 * Leave data for userid (normalised; its domain not ours) at its
 * registry, on behalf of who (a user of ours by certificate, as
 * inbox_outgoing checked): posted over the same mutual TLS as a lookup,
 * with the sender in IRP-Sender, within federation_rate posts a minute
 * per sender.  *out is what the other registry stored.  Audited here
 * as "inbox.forward".  -1 with e: the other registry's refusals of the
 * message as it said them (400, 404, 409, 413, 507), 403
 * federation_refused (no rule here), 429, 502, 503.
 */
int fed_post(struct fed *f, struct db *db, const struct reg_actor *who,
    const char *userid, const char *msg_id, const unsigned char *data,
    size_t len, struct irp_inbox_item *out, struct reg_err *e)
    __attribute__((warn_unused_result));

/*
 * Admit the registry of domain (as its IRP-Domain header says), which
 * presented leaf followed by ca (DER each; ca may be NULL).  0 with
 * trust ("pinned" or "dane") and the domain as normalised in
 * out_domain, or -1 with e: 403 federation_refused, 429.
 */
int fed_admit(struct fed *f, struct db *db, const char *domain,
    const unsigned char *leaf, size_t leaf_len, const unsigned char *ca,
    size_t ca_len, char trust[IRP_WORD_MAX], char out_domain[254],
    struct reg_err *e) __attribute__((warn_unused_result));

#endif
