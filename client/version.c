/* version.c: the version of libdealflow, which is the version of dealflow. */
#include "dealflow.h"
#include "version.h"

const char *df_version(void)
{
    return DF_VERSION;
}
