/* consumer.c: a program built against an installed libdealflow; prints its version. */
#include <stdio.h>

#include <dealflow.h>

int main(void)
{
    return puts(df_version()) < 0;
}
