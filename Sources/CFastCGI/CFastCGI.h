// libfcgi's reentrant application API (Debian libfcgi-dev). Only fcgiapp.h: fcgi_stdio.h
// replaces stdio and is not used.
#include <fcgiapp.h>
