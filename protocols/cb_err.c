/* cb_err.c: text for the codes of cb_err.h, generated from the same list. */
#include "cb_err.h"

const char *cb_strerror(int err)
{
    switch (err) {
#define CB_ERR_TEXT(name, code, text)                                                              \
    case code:                                                                                     \
        return text;
        CB_ERR_LIST(CB_ERR_TEXT)
#undef CB_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *cb_err_name(int err)
{
    switch (err) {
#define CB_ERR_NAME(name, code, text)                                                              \
    case code:                                                                                     \
        return #name;
        CB_ERR_LIST(CB_ERR_NAME)
#undef CB_ERR_NAME
    default:
        return "UNKNOWN";
    }
}
