/* Placeholder until the s3 backend lands: s3:// is refused clearly. */
#include "internal.h"

int trs__storage_s3_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err)
{
	(void)ctx;
	*out = NULL;
	return trs__error_set(err, TRS_EUNSUPPORTED,
			      "storage '%s': this build has no S3 backend yet; use --dest file://DIR", url);
}
