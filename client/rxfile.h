/*
 * rxfile.h - the SHA-256 of a file being received, taken by a helper
 * thread that reads back what the session wrote, and the file synced
 * by another as it grows.
 *
 * A session receiving a file decrypts, frames and writes it on the
 * loop's thread, and that one thread is what holds a transfer back:
 * hashing there too was a third of its work.  So the loop only writes
 * and says how far it got; the helper reads that back from the page
 * cache and hashes it beside the loop, on another core when there is
 * one.  What is hashed is what the file holds, so the check at the end
 * covers the bytes as stored.
 *
 * Another helper syncs the file to the disk as it grows (fdatasync
 * every few MiB), so that the fsync before it is renamed into place
 * waits for the last few MiB, not for the whole file: the disk works
 * while the network does.  That fsync stays.
 */
#ifndef RXFILE_H
#define RXFILE_H

#include <stddef.h>
#include <stdint.h>

struct rxfile;

/*
 * Start hashing the file open at fd (for reading too), from its start;
 * the helpers keep a descriptor of their own.  NULL with err filled.
 */
struct rxfile *rxfile_start(int fd, char *err, size_t errlen);
/* The first total bytes of the file are written: hash them. */
void rxfile_wrote(struct rxfile *r, uint64_t total);
/*
 * Wait until all that was written is hashed; its SHA-256 as lower-case
 * hex into hex.  0, or -1 with err filled (the file could not be read
 * back, or not synced).  The helpers have ended either way: only
 * rxfile_free remains.
 */
int rxfile_sha256(struct rxfile *r, char hex[65], char *err, size_t errlen);
/* Stop the helpers, if they still run, and free.  NULL is a no-op. */
void rxfile_free(struct rxfile *r);

#endif
