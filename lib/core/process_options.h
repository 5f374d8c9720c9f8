/* SPDX-License-Identifier: Apache-2.0 */
/* trs_process_options at this library's version (lib/core/process_options.c). */
#ifndef TRS_PROCESS_OPTIONS_H
#define TRS_PROCESS_OPTIONS_H

#include "internal.h"

/* `given` (NULL: the defaults) into *out at TRS_PROCESS_OPTIONS_VERSION, the fields an older caller does
 * not have at their defaults; TRS_EINVAL for an unknown version or a value out of range. */
int trs__process_options_take(trs_process_options *out, const trs_process_options *given, trs_error *err);

#endif
