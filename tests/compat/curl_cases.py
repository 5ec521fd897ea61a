"""The curl compat cases: one line each, the same words given to curl and `smolmix fetch`.

`{http}`/`{https}` are the demo origin (smolmix_cli/testnet/origin/http.py routes).
Cases that print the request back (/echo, /headers) pass `-A t/1`: smolmix's default
User-Agent is a documented difference (docs/compat.md). `known=` marks a documented
difference; such a case must keep differing (strict xfail) until it is fixed.
"""

from __future__ import annotations

from smolmix_cli.testnet.origin.http import pseudo_random_bytes
from tests.compat.curl_runner import Case as C

FORM = b"x=1\r\ny=2\n\x00z=3"
UP = b"upload me\n" * 100

CASES: list[C] = [
    # plain transfers: body bytes untouched
    C("root", "-sS {http}/"),
    C("root_https", "-sS {https}/"),
    C("bytes", "-sS {http}/bytes/1000"),
    C("bytes_large_https", "-sS {https}/bytes/300000"),
    C("chunked", "-sS {http}/chunked/10000"),
    C("no_silent_flags", "{http}/bytes/64"),
    C("http11_noop", "-sS --http1.1 {http}/"),
    C("max_time_enough", "-sS -m 30 {http}/"),
    C("limit_rate", "-sS --limit-rate 1M {http}/bytes/2000"),
    # status codes and -f
    C("status_404_no_fail", "-sS {http}/status/404"),
    C("status_201", "-sS {http}/status/201"),
    C("fail_404", "-sS -f {http}/status/404", stderr=True),
    C("fail_500", "-sSf {http}/status/500", stderr=True),
    C("fail_silent_no_text", "-s -f {http}/status/404", stderr=True),
    C("fail_not_silent", "-f {http}/status/404", stderr=True),
    C("fail_with_body", "-sS --fail-with-body {http}/status/404", stderr=True),
    C("fail_ok_status", "-sSf {http}/status/204"),
    C("retry_not_on_404", "-sS --retry 1 {http}/status/404"),
    # headers out: -i, -I, -D
    C("include", "-sS -i {http}/"),
    C("include_404", "-sS -i {http}/status/404"),
    C("head", "-sS -I {http}/"),
    C("head_https", "-sS -I {https}/bytes/10"),
    C("dump_header_stdout", "-sS -D - {http}/status/201"),
    C("dump_header_file", "-sS -D h.txt {http}/"),
    # output files
    C("output_file", "-sS -o out.bin {http}/bytes/5000"),
    C("output_dash", "-sS -o - {http}/bytes/10"),
    C("remote_name", "-sS -O {http}/bytes/123"),
    C("remote_name_query", "-sS -O '{http}/bytes/12?x=1'"),
    C("create_dirs", "-sS --create-dirs -o a/b/c.bin {http}/bytes/10"),
    C("two_outputs", "-sS -o one -o two {http}/bytes/1 {http}/bytes/2"),
    # redirects
    C("redirect_not_followed", "-sS -i {http}/redirect/1"),
    C("location", "-sSL -A t/1 {http}/redirect/3"),
    C("location_include", "-sSiL -A t/1 {http}/redirect/2"),
    C("max_redirs_exceeded", "-sSL --max-redirs 2 {http}/redirect/4", stderr=True),
    C("max_redirs_default_50", "-sSL -o /dev/null -w '%{num_redirects}' {http}/redirect/8"),
    C("redirect_303_post", "-sSL -A t/1 -d a=1 '{http}/redirect-to?url=/echo&status=303'"),
    C("redirect_307_post", "-sSL -A t/1 -d a=1 '{http}/redirect-to?url=/echo&status=307'"),
    # -w
    C("w_http_code", "-s -o /dev/null -w '%{http_code}' {http}/status/418"),
    C("w_no_response", "-s -w '%{http_code}|%{exitcode}' {http}/empty"),
    C("w_timeout", "-s -m 1 -w '%{http_code}|%{exitcode}' {http}/slow/3"),
    C("w_size_type", "-s -o /dev/null -w '%{size_download} %{content_type}\\n' {http}/bytes/777"),
    C("w_url_effective", "-sL -o /dev/null -w '%{url_effective}' {http}/redirect/2"),
    C("w_header", "-s -o /dev/null -w '%header{content-type}' {http}/gzip"),
    C("w_escapes", "-s -o /dev/null -w '100%%\\t%{response_code}\\n' {http}/"),
    C("w_streams", "-s -o /dev/null -w '%{stderr}x%{stdout}y' {http}/"),
    C("w_onerror_failed", "-s -o /dev/null -w '%{onerror}failed %{exitcode}' {http}/empty"),
    C("w_onerror_ok", "-s -o /dev/null -w '%{onerror}failed' {http}/"),
    C("w_unknown_variable", "-s -o /dev/null -w '%{nope}x' {http}/", stderr=True),
    C("w_file", "-s -o /dev/null -w @fmt.txt {http}/", files={"fmt.txt": b"%{http_code}\\n"}),
    C("w_stdin", "-s -o /dev/null -w @- {http}/", stdin=b"%{http_code}:%{method}"),
    C("w_num_headers", "-s -o /dev/null -w '%{num_headers}' {http}/"),
    C("w_urlnum", "-s -o /dev/null -w '%{urlnum}' {http}/ {http}/bytes/1"),
    C("w_filename_effective", "-s -o f.bin -w '%{filename_effective}' {http}/"),
    C("w_ssl_verify_result", "-s -o /dev/null -w '%{ssl_verify_result}' {https}/"),
    C(
        "w_scheme_version_method",
        "-s -o /dev/null -w '%{scheme} %{http_version} %{method}' {https}/",
    ),
    C("w_redirect_url", "-s -o /dev/null -w '%{redirect_url}' {http}/redirect/1"),
    # a warm connection the session kept from an earlier command is no new connect (0, as
    # curl says of a reused one); --fresh-connections gives a lone curl process's count
    C(
        "w_num_connects",
        "-s -o /dev/null -w '%{num_connects}' {http}/",
        smolmix_env={"SMOLMIX_FRESH_CONNECTIONS": "1"},
    ),
    # several URLs
    C("multi_url", "-sS {http}/ {http}/bytes/10"),
    C("multi_exit_is_last", "-sS -f {http}/status/404 {http}/", stderr=True),
    C("multi_fail_last", "-sSf {http}/ {http}/status/500", stderr=True),
    C("fail_early", "-sSf --fail-early {http}/status/500 {http}/", stderr=True),
    # request bodies
    C("data", "-sS -A t/1 -d a=1 -d b=2 {http}/echo"),
    C("data_file_strips", "-sS -A t/1 -d @f.txt {http}/echo", files={"f.txt": FORM}),
    C("data_binary_file", "-sS -A t/1 --data-binary @f.txt {http}/upload", files={"f.txt": FORM}),
    C("data_raw_at", "-sS -A t/1 --data-raw @x {http}/echo"),
    C("data_stdin", "-sS -A t/1 -d @- {http}/echo", stdin=b"from=stdin\n"),
    C("data_urlencode_pair", "-sS -A t/1 --data-urlencode 'q=a b&c' {http}/echo"),
    C("data_urlencode_plain", "-sS -A t/1 --data-urlencode 'hello world' {http}/echo"),
    C("data_urlencode_eq", "-sS -A t/1 --data-urlencode '=a+b c' {http}/echo"),
    C(
        "data_urlencode_file",
        "-sS -A t/1 --data-urlencode n@f.txt {http}/echo",
        files={"f.txt": b"a b\n"},
    ),
    C("json", "-sS -A t/1 --json '{\"k\":1}' {http}/echo"),
    C("get_data", "-sS -A t/1 -G -d a=1 -d 'b=x y' {http}/echo"),
    C("method", "-sS -A t/1 -X DELETE {http}/echo"),
    C("upload_file", "-sS -T up.txt {http}/upload", files={"up.txt": UP}),
    C("upload_stdin", "-sS -T - {http}/upload", stdin=UP),
    C(
        "form_status",
        "-sS -o /dev/null -w '%{http_code}' -F a=1 -F f=@up.txt {http}/upload",
        files={"up.txt": UP},
    ),
    C("url_query", "-sS -A t/1 --url-query 'a=b c' --url-query +x=%20 {http}/echo"),
    # request headers
    C("header_add", "-sS -A t/1 -H 'X-Test: 1' {http}/echo"),
    C("header_remove", "-sS -A t/1 -H 'Accept:' {http}/echo"),
    C("header_empty", "-sS -A t/1 -H 'X-Empty;' {http}/headers"),
    C("header_replace_host", "-sS -A t/1 -H 'Host: other.example' {http}/headers"),
    C("user_agent", "-sS -A custom/2 {http}/headers"),
    C(
        "default_user_agent",
        "-sS {http}/headers",
        known="smolmix sends one fixed common curl User-Agent, not the local curl's version",
    ),
    C("referer", "-sS -A t/1 -e http://r.example/ {http}/headers"),
    C("basic_auth", "-sS -u alice:pw {http}/basic-auth/alice/pw"),
    C("basic_auth_wrong", "-sS -f -u alice:no {http}/basic-auth/alice/pw", stderr=True),
    C("cookie_string", "-sS -A t/1 -b 'a=1; b=2' {http}/headers"),
    C(
        "cookie_file",
        "-sS -A t/1 -b jar.txt {http}/headers",
        files={"jar.txt": b"demo.smolmix.test\tFALSE\t/\tFALSE\t0\tk\tv\n"},
    ),
    # encodings, ranges, resume
    C("gzip_raw", "-sS {http}/gzip"),
    C("gzip_compressed", "-sS --compressed {http}/gzip"),
    C("deflate_compressed", "-sS --compressed {http}/deflate"),
    C("range", "-sS -r 0-99 {http}/bytes/1000"),
    C("range_suffix", "-sS -r -50 {http}/bytes/1000"),
    C(
        "continue_dash",
        "-sS -C - -o part.bin {http}/bytes/1000",
        files={"part.bin": pseudo_random_bytes(100)},
    ),
    C("continue_number", "-sS -C 100 {http}/bytes/1000"),
    # failures
    C("empty_reply", "-sS {http}/empty", stderr=True),
    C("partial_body", "-sS {http}/partial/1000", stderr=True),
    C("timeout", "-sS -m 1 {http}/slow/3"),
    C("no_such_host", "-sS http://nosuch.smolmix.test/", stderr=True),
    C("malformed_url", "-sS 'http://[bad/'"),
    C(
        "malformed_url_words",
        "-sS 'http://[bad/'",
        stderr=True,
        known="URL parse errors: same exit 3, smolmix's own words (not libcurl's URL parser)",
    ),
    # conditions, resume, query building
    C("time_cond", "-sS -A t/1 -b k=v -H X-T:1 -z 'Sat, 01 Jan 2000 00:00:00 GMT' {http}/headers"),
    C("time_cond_unmodified", "-sS -A t/1 -z '-Sat, 01 Jan 2000 00:00:00 GMT' {http}/headers"),
    C("time_cond_not_a_date", "-sS -A t/1 -z nosuchfile {http}/headers"),
    C(
        "etag_compare",
        "-sS -A t/1 -H X-T:1 --etag-compare et.txt {http}/headers",
        files={"et.txt": b'"abc"\n'},
    ),
    C("etag_compare_missing", "-sS --etag-compare missing.txt {http}/headers"),
    C("etag_save_absent", "-sS -o /dev/null --etag-save et.txt {http}/"),
    C("continue_number_range", "-sS -A t/1 -C 5 {http}/headers"),
    C(
        "url_query_file",
        "-sS -A t/1 --url-query @q.txt --url-query n@q.txt '{http}/echo?q'",
        files={"q.txt": b'"abc"\n'},
    ),
    C("url_query_get_data", "-sS -A t/1 -G -d a=1 --url-query 'b=c d' {http}/echo"),
    # globbing, config files, parallel
    C("glob_list", "-sS '{http}/bytes/{1,2}'"),
    C("glob_range_output", "-sS -o 'f#1.bin' '{http}/bytes/[1-3]'"),
    C("config_file", "-sS -K cfg", files={"cfg": b'url = "http://demo.smolmix.test/bytes/5"\n'}),
    C(
        "config_file_options",
        "-K cfg {http}/status/404",
        stderr=True,
        files={"cfg": b'# x\nsilent\nshow-error\nfail\nwrite-out = "%{http_code}\\n"\n'},
    ),
    C("config_stdin", "-K - {http}/bytes/3", stdin=b"--silent\n-o out.bin\n"),
    C("no_url", "-sS", stderr=True, known="curl 7.88 prints its usage hint on stderr"),
    C("cookie_jar_write", "-sS -o /dev/null -c jar.txt {http}/"),
    C("parallel_outputs", "-sS -Z -o a -o b {http}/bytes/10 {http}/bytes/20"),
    C("parallel_glob_outputs", "-sS -Z --parallel-max 2 -o 'p#1' '{http}/bytes/[1-4]'"),
    C("parallel_exit_first_failure", "-sS -Z -f -o a -o b {http}/status/404 {http}/bytes/2"),
    C(
        "parallel_error_line",
        "-sS -Z -f -o a {http}/status/404",
        stderr=True,
        known="curl 7.88 -Z prints no '(22)' line for a failed transfer; smolmix prints it",
    ),
    C("glob_set_output", "-sS -o 'x_#1.bin' '{http}/bytes/{3,5}'"),
    C("glob_two_patterns", "-sS -o '#2-#1' '{http}/{bytes,chunked}/[1-2]'"),
    C("globoff_brackets", "-sS -g '{http}/bytes/[1-2]'"),
    C("glob_urlnum", "-s -o /dev/null -w '%{urlnum}%{url_effective}\\n' '{http}/bytes/[1-2]'"),
    # nginx 1.22 on loopback: a real server's ETag, Last-Modified, ranges and 304s
    C("nginx_file", "-sS {nginx}/a.txt"),
    C("nginx_index", "-sS {nginx}/"),
    C("nginx_include", "-sS -i {nginx}/a.txt"),
    C("nginx_head", "-sS -I {nginx}/data.bin"),
    C("nginx_binary", "-sS {nginx}/data.bin"),
    C("nginx_404_page", "-sS {nginx}/missing"),
    C("nginx_404_fail", "-sSf {nginx}/missing", stderr=True),
    C("nginx_teapot", "-s -w '%{http_code} %{size_download}' {nginx}/teapot"),
    C("nginx_moved", "-sS -i {nginx}/moved"),
    C("nginx_moved_follow", "-sSL -w '%{num_redirects} %{url_effective}' {nginx}/moved"),
    C("nginx_range", "-sS -r 10-19 {nginx}/data.bin"),
    C("nginx_range_head", "-sS -i -r 0-3 {nginx}/a.txt"),
    C("nginx_continue_number", "-sS -C 3 {nginx}/a.txt"),
    C("nginx_continue_file", "-sS -C - -o a.txt {nginx}/a.txt", files={"a.txt": b"al"}),
    C("nginx_remote_name", "-sS -O {nginx}/b.txt"),
    C("nginx_etag_save", "-sS -o /dev/null --etag-save e.txt {nginx}/a.txt"),
    C(
        "nginx_etag_match_304",
        "-s -w '%{http_code}' --etag-compare e.txt {nginx}/a.txt",
        files={"e.txt": b'"386d4380-6"\n'},
    ),
    C(
        "nginx_etag_other_200",
        "-s -w '%{http_code}' --etag-compare e.txt {nginx}/a.txt",
        files={"e.txt": b'"other"\n'},
    ),
    C(
        "nginx_time_cond_304",
        "-s -w '%{http_code}' -z 'Sun, 02 Jan 2000 00:00:00 GMT' {nginx}/a.txt",
    ),
    C(
        "nginx_time_cond_200",
        "-s -w '%{http_code}' -z 'Fri, 31 Dec 1999 00:00:00 GMT' {nginx}/a.txt",
    ),
    C("nginx_time_cond_file", "-s -w '%{http_code}' -z stamp {nginx}/a.txt", files={"stamp": b"x"}),
    C("nginx_glob", "-sS '{nginx}/{a,b}.txt'"),
    C("nginx_glob_outputs", "-sS -o 'got_#1' '{nginx}/{a,b}.txt'"),
    C("nginx_parallel", "-sS -Z -o 1 -o 2 -o 3 {nginx}/a.txt {nginx}/b.txt {nginx}/data.bin"),
    C("nginx_cookie_jar", "-sS -c jar.txt {nginx}/cookie"),
    C("nginx_cookie_follow", "-sSL -b '' {nginx}/to-cookie"),
    C("nginx_cookie_jar_follow", "-sSL -c jar.txt {nginx}/to-cookie"),
    C(
        "nginx_cookie_roundtrip",
        "-sS -b jar.txt {nginx}/echo-cookie",
        files={"jar.txt": b"127.0.0.1\tFALSE\t/\tFALSE\t0\tk\tv\n"},
    ),
    C(
        "nginx_w_json_keys_exit",
        "-s -o /dev/null -w '%{exitcode} %{num_headers} %{content_type}' {nginx}/a.txt",
    ),
    C("nginx_limit_rate", "-sS --limit-rate 16k {nginx}/data.bin"),
    # --resolve / --connect-to change only where the connection goes: the same bytes back
    C("resolve_pinned", "-sS --resolve demo.smolmix.test:80:198.18.0.1 {http}/bytes/7"),
]
