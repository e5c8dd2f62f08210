// Drops a file on an X window as a file manager does (the XDND protocol, version 5): offers
// text/uri-list, moves over the window, drops, and hands over "file://PATH" when the window asks
// for it. The app test drops a saved trace on ForkLab's window with it.
//   xdnd_drop WINDOW_ID PATH     exit 0 when the window said it finished, 1 otherwise
//   xdnd_drop auto PATH          the first window that takes drops (XdndAware), waited for
//                                up to 10 s (on a display of its own, the app's)
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static Display* dpy;
static Window me, target;

static Atom atom(const char* name) { return XInternAtom(dpy, name, False); }

static void send(const char* type, long l1, long l2, long l3, long l4) {
    XEvent e;
    memset(&e, 0, sizeof e);
    e.xclient.type = ClientMessage;
    e.xclient.display = dpy;
    e.xclient.window = target;
    e.xclient.message_type = atom(type);
    e.xclient.format = 32;
    e.xclient.data.l[0] = (long)me;
    e.xclient.data.l[1] = l1;
    e.xclient.data.l[2] = l2;
    e.xclient.data.l[3] = l3;
    e.xclient.data.l[4] = l4;
    XSendEvent(dpy, target, False, NoEventMask, &e);
    XFlush(dpy);
}

// The next event within the deadline; 0 when none came.
static int next_event(XEvent* e, time_t deadline) {
    while (!XPending(dpy)) {
        if (time(NULL) >= deadline) return 0;
        int fd = ConnectionNumber(dpy);
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        struct timeval tv = {0, 100000};
        select(fd + 1, &r, NULL, NULL, &tv);
    }
    XNextEvent(dpy, e);
    return 1;
}

static int takes_drops(Window w) {
    Atom type;
    int format;
    unsigned long n, left;
    unsigned char* data = NULL;
    int ok = XGetWindowProperty(dpy, w, atom("XdndAware"), 0, 1, False, AnyPropertyType, &type,
                                &format, &n, &left, &data) == Success && type != None;
    if (data) XFree(data);
    return ok;
}

static Window find_target(time_t deadline) {
    do {
        Window root, parent, *kids = NULL;
        unsigned int n = 0;
        Window found = 0;
        if (XQueryTree(dpy, DefaultRootWindow(dpy), &root, &parent, &kids, &n))
            for (unsigned int i = 0; i < n && !found; ++i)
                if (takes_drops(kids[i])) found = kids[i];
        if (kids) XFree(kids);
        if (found) return found;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    } while (time(NULL) < deadline);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: xdnd_drop WINDOW_ID PATH\n");
        return 2;
    }
    dpy = XOpenDisplay(NULL);
    if (!dpy) {
        fprintf(stderr, "xdnd_drop: no display\n");
        return 2;
    }
    target = strcmp(argv[1], "auto") == 0 ? find_target(time(NULL) + 10) : (Window)strtoul(argv[1], NULL, 0);
    if (!target) {
        fprintf(stderr, "xdnd_drop: no window that takes drops appeared\n");
        return 1;
    }
    char uri[4200];
    snprintf(uri, sizeof uri, "file://%s\r\n", argv[2]);
    me = XCreateSimpleWindow(dpy, DefaultRootWindow(dpy), 0, 0, 1, 1, 0, 0, 0);
    XSetSelectionOwner(dpy, atom("XdndSelection"), me, CurrentTime);

    // Where to "be": the middle of the target, in root coordinates.
    XWindowAttributes wa;
    XGetWindowAttributes(dpy, target, &wa);
    int x = 0, y = 0;
    Window child;
    XTranslateCoordinates(dpy, target, DefaultRootWindow(dpy), wa.width / 2, wa.height / 2, &x, &y, &child);

    const long version = 5;
    send("XdndEnter", version << 24, (long)atom("text/uri-list"), 0, 0);
    send("XdndPosition", 0, ((long)x << 16) | (y & 0xffff), CurrentTime, (long)atom("XdndActionCopy"));
    time_t deadline = time(NULL) + 10;
    int dropped = 0;
    XEvent e;
    while (next_event(&e, deadline)) {
        if (e.type == ClientMessage && e.xclient.message_type == atom("XdndStatus") && !dropped) {
            if (!(e.xclient.data.l[1] & 1)) {
                fprintf(stderr, "xdnd_drop: the window does not accept the drop\n");
                return 1;
            }
            send("XdndDrop", 0, CurrentTime, 0, 0);
            dropped = 1;
        } else if (e.type == SelectionRequest) {
            XSelectionRequestEvent* rq = &e.xselectionrequest;
            XEvent reply;
            memset(&reply, 0, sizeof reply);
            reply.xselection.type = SelectionNotify;
            reply.xselection.display = dpy;
            reply.xselection.requestor = rq->requestor;
            reply.xselection.selection = rq->selection;
            reply.xselection.target = rq->target;
            reply.xselection.time = rq->time;
            reply.xselection.property = None;
            if (rq->target == atom("text/uri-list")) {
                XChangeProperty(dpy, rq->requestor, rq->property, rq->target, 8, PropModeReplace,
                                (unsigned char*)uri, (int)strlen(uri));
                reply.xselection.property = rq->property;
            }
            XSendEvent(dpy, rq->requestor, False, NoEventMask, &reply);
            XFlush(dpy);
        } else if (e.type == ClientMessage && e.xclient.message_type == atom("XdndFinished")) {
            return 0;
        }
    }
    fprintf(stderr, "xdnd_drop: %s\n", dropped ? "the window never finished the drop" : "the window never answered");
    return 1;
}
