/*
 * log.h - dird's one logging module (OpenSMTPD style).
 *
 * One line per event on stderr ("LEVEL message"), or to syslog when asked.
 * Never pass a secret, a code, a password, a key or a certificate here.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_LEVEL_WARN = 0, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(enum log_level level, int use_syslog);
/*
 * For a child that closes every descriptor it does not need (signer.c):
 * let go of the syslog connection before, and make a new one after.
 */
void log_detach(void);
void log_reopen(void);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
