/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the S3/STS XML parser: any bytes must give 0 or a
 * negative code, never a crash, leak or unbounded allocation.
 *
 *     clang -fsanitize=fuzzer,address,undefined -Iinclude -Ilib fuzz/fuzz_xml.c \
 *           lib/aws/xml.c lib/common.c lib/context.c -lexpat -o fuzz_xml
 *     ./fuzz_xml fuzz/corpus/xml
 */
#include "aws/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trs__aws_xml x;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__aws_xml_parse((const char *)data, size, &x, &err);
	/* Whatever was parsed must be consistent with what was reported. */
	if (rc == 0 && x.ntags > TRS_AWS_XML_MAX_TAGS)
		__builtin_trap();
	if (rc == 0 && x.nparts > TRS_AWS_XML_MAX_PARTS)
		__builtin_trap();
	trs__aws_xml_free(&x);
	return 0;
}
