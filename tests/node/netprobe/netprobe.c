/* A pod's view of the network, for tests/node/network.rs: tries a TCP connection to each
 * HOST:PORT argument (IPv4) and prints "HOST:PORT open", "refused" or "timeout" (no answer
 * within 3 seconds), then sleeps so that its log can be read. Built static with musl-gcc. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *probe(const char *target) {
    char host[64];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof host) return "bad-target";
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return "bad-target";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return "no-socket";
    const char *result;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        result = "open";
    } else if (errno != EINPROGRESS) {
        result = errno == ECONNREFUSED ? "refused" : "unreachable";
    } else {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, 3000);
        int error = 0;
        socklen_t len = sizeof error;
        if (n == 0) {
            result = "timeout";
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
            result = error == ECONNREFUSED ? "refused" : "unreachable";
        } else {
            result = "open";
        }
    }
    close(fd);
    return result;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        printf("%s %s\n", argv[i], probe(argv[i]));
    }
    printf("done\n");
    fflush(stdout);
    for (;;) pause();
}
