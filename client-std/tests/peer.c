/* A local service the way libparodus makes one, on the real nanomsg library: it binds PULL on
 * its own URL, connects PUSH to parodus and sends its registration. Then it prints every
 * message it receives as "RECV <hex>" and sends every hex line it reads from stdin.
 * usage: peer <parodus-url> <own-url> <registration-hex> */
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int send_hex(int sock, const char *hex)
{
    size_t n = strspn(hex, "0123456789abcdef") / 2;
    unsigned char *buf = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &buf[i]);
    int rc = nn_send(sock, buf, n, 0);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int pull = nn_socket(AF_SP, NN_PULL);
    if (pull < 0 || nn_bind(pull, argv[2]) < 0) {
        fprintf(stderr, "bind %s: %s\n", argv[2], nn_strerror(nn_errno()));
        return 1;
    }
    int push = nn_socket(AF_SP, NN_PUSH);
    if (push < 0 || nn_connect(push, argv[1]) < 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], nn_strerror(nn_errno()));
        return 1;
    }
    if (send_hex(push, argv[3]) < 0)
        return 1;
    int fd;
    size_t fd_size = sizeof fd;
    nn_getsockopt(pull, NN_SOL_SOCKET, NN_RCVFD, &fd, &fd_size);
    struct pollfd fds[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
    static char line[1 << 20];
    for (;;) {
        if (poll(fds, 2, -1) < 0)
            return 1;
        if (fds[0].revents & POLLIN) {
            void *msg = NULL;
            int n = nn_recv(pull, &msg, NN_MSG, NN_DONTWAIT);
            if (n >= 0) {
                printf("RECV ");
                for (int i = 0; i < n; i++)
                    printf("%02x", ((unsigned char *)msg)[i]);
                printf("\n");
                fflush(stdout);
                nn_freemsg(msg);
            }
        }
        if (fds[1].revents & (POLLIN | POLLHUP)) {
            if (!fgets(line, sizeof line, stdin))
                return 0;
            if (send_hex(push, line) < 0)
                return 1;
        }
    }
}
