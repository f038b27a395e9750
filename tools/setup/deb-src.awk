# tools/setup/deb-src.awk - derive deb-src entries (deb822 format) from the
# system's Debian "deb" entries, so that `apt-get source` can find Debian's
# source packages from the same archives, suites and keys.
#
#   awk -f deb-src.awk /etc/apt/sources.list.d/debian.sources   (deb822)
#   awk -v format=list -f deb-src.awk /etc/apt/sources.list       (one-line)
#
# Copies URIs, Suites, Components and Signed-By; skips stanzas that are
# disabled (Enabled: no) or have no "deb" type. Prints nothing if there is
# nothing to derive.

function flush(    i, n, types, is_deb) {
    if (uris != "" && suites != "" && enabled != "no") {
        n = split(typelist, types, /[ \t]+/)
        is_deb = 0
        for (i = 1; i <= n; i++)
            if (types[i] == "deb")
                is_deb = 1
        if (is_deb) {
            if (emitted)
                print ""
            print "Types: deb-src"
            print "URIs: " uris
            print "Suites: " suites
            if (components != "")
                print "Components: " components
            if (signed != "")
                print "Signed-By: " signed
            emitted = 1
        }
    }
    typelist = uris = suites = components = signed = enabled = ""
    field = ""
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t\r]+$/, "", s)
    return s
}

# ---- deb822 -----------------------------------------------------------------

format != "list" && /^[ \t]*#/ { next }

format != "list" && /^[ \t]*$/ { flush(); next }

# continuation line (e.g. a multi-line Signed-By key block)
format != "list" && /^[ \t]/ {
    if (field == "signed-by")
        signed = signed "\n " trim($0)
    next
}

format != "list" {
    name = tolower(trim(substr($0, 1, index($0, ":") - 1)))
    value = trim(substr($0, index($0, ":") + 1))
    field = name
    if (name == "types") typelist = value
    else if (name == "uris") uris = value
    else if (name == "suites") suites = value
    else if (name == "components") components = value
    else if (name == "signed-by") signed = value
    else if (name == "enabled") enabled = tolower(value)
    next
}

# ---- one-line format: deb [options] uri suite [component...] ------------------

format == "list" && $1 == "deb" {
    line = $0
    sub(/#.*/, "", line)
    opts = ""
    if (match(line, /\[[^]]*\]/)) {
        opts = substr(line, RSTART + 1, RLENGTH - 2)
        line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
    }
    n = split(trim(line), w, /[ \t]+/)
    if (n < 3)
        next
    typelist = "deb"
    uris = w[2]
    suites = w[3]
    components = ""
    for (i = 4; i <= n; i++)
        components = components (components == "" ? "" : " ") w[i]
    m = split(opts, o, /[ \t]+/)
    for (i = 1; i <= m; i++)
        if (tolower(o[i]) ~ /^signed-by=/)
            signed = substr(o[i], index(o[i], "=") + 1)
    flush()
    next
}

END { flush() }
