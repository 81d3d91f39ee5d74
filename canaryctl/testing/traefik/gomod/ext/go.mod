// Stand-in for github.com/traefik/traefik/dynamic/ext, a folder of Traefik's repository
// that its module zip does not contain (see ../go.mod).
module github.com/traefik/traefik/dynamic/ext

go 1.26.0
