#pragma once
// libcurl, loaded with dlopen() the first time something speaks HTTP, rather than linked.
//
// Why: linked, libcurl.so.4 and its ~30 libraries (TLS, Kerberos, LDAP, IDN, ...) are loaded and
// relocated at the start of every process that links lockable, about 4 ms of a CLI run that
// never leaves the lock folder. Loaded on first use, only the runs that use HTTP (resources from a
// URL, the lock service, etcd) pay for it. The headers (libcurl4-openssl-dev) are still used at
// build time; at run time libcurl.so.4 (Debian's libcurl4) must be installed for HTTP.

#include <curl/curl.h>

#include <ctime>

namespace lockable::http {

/// The libcurl functions the HTTP client calls, with libcurl's own signatures.
struct Libcurl {
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  const char* (*easy_strerror)(CURLcode);
  CURLM* (*multi_init)();
  CURLMcode (*multi_cleanup)(CURLM*);
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMcode (*multi_perform)(CURLM*, int*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd[], unsigned int, int, int*);
  CURLMcode (*multi_wakeup)(CURLM*);
  const char* (*multi_strerror)(CURLMcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
  time_t (*getdate)(const char*, const time_t*);
};

/// libcurl, loaded and curl_global_init()ed once per process (thread-safe; later calls return
/// the same table at once). Never unloaded. Throws BackendError naming libcurl.so.4, the Debian
/// package to install and why it is needed, when the library cannot be loaded, lacks one of the
/// functions, or is older than the 7.85 this build needs (CURLOPT_PROTOCOLS_STR); every later
/// call throws the same error again.
const Libcurl& libcurl();

}  // namespace lockable::http
