/* Free functions shared by every mailstore implementation (imap/mailstore.h). */
#include "imap/mailstore.h"

#include <stdlib.h>

#include "util/xalloc.h"

void
imap_ms_mailboxes_free(struct imap_ms_mailbox **vp, size_t n)
{
	struct imap_ms_mailbox *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	x_free(vp);
}

void
imap_ms_msgs_free(struct imap_ms_msg **vp, size_t n)
{
	struct imap_ms_msg *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].keywords);
	x_free(vp);
}

void
imap_ms_meta_deinit(struct imap_ms_meta *m)
{
	if (m == NULL)
		return;
	x_free(&m->envelope);
	x_free(&m->body);
	x_free(&m->bodystructure);
	buf_deinit(&m->parts);
}

void
imap_mailstore_free(struct imap_mailstore **msp)
{
	struct imap_mailstore *ms = *msp;
	if (ms == NULL)
		return;
	*msp = NULL;
	ms->ops->free(ms);
}
