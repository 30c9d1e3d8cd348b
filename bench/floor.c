/*
 * The floor of a first copy on this disk: a parallel tree copy making the fewest system calls
 * per entry (lstat, two opens, copy_file_range, futimens, two closes per file; mkdir per
 * folder), with no error handling, no owners, no folder times and no durability. bench/secure
 * times it beside deliveryctl to show what the kernel and the disk allow; it is never used to
 * copy anything that matters.
 *
 *     cc -O2 -pthread bench/floor.c -o floor && ./floor SOURCE TARGET THREADS
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char **pending;
static int pending_count, pending_capacity, busy;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static const char *source_root, *target_root;

static void push(char *relative) {
    pthread_mutex_lock(&lock);
    if (pending_count == pending_capacity) {
        pending_capacity = pending_capacity ? pending_capacity * 2 : 1024;
        pending = realloc(pending, pending_capacity * sizeof *pending);
    }
    pending[pending_count++] = relative;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

static void copy_folder(const char *relative) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_root, relative);
    int source = open(path, O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof path, "%s/%s", target_root, relative);
    int target = open(path, O_RDONLY | O_DIRECTORY);
    DIR *listing = fdopendir(dup(source));
    struct dirent *entry;
    while ((entry = readdir(listing))) {
        const char *name = entry->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git")) continue;
        struct stat status;
        fstatat(source, name, &status, AT_SYMLINK_NOFOLLOW);
        if (S_ISDIR(status.st_mode)) {
            mkdirat(target, name, 0700);
            char *child = malloc(strlen(relative) + strlen(name) + 2);
            sprintf(child, "%s%s%s", relative, *relative ? "/" : "", name);
            push(child);
        } else if (S_ISREG(status.st_mode)) {
            int in = openat(source, name, O_RDONLY | O_NOFOLLOW);
            int out = openat(target, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, status.st_mode & 07777);
            for (off_t left = status.st_size; left > 0;) {
                ssize_t copied = copy_file_range(in, NULL, out, NULL, left, 0);
                if (copied <= 0) break;
                left -= copied;
            }
            struct timespec times[2] = {status.st_atim, status.st_mtim};
            futimens(out, times);
            close(in);
            close(out);
        } else if (S_ISLNK(status.st_mode)) {
            char link[4096];
            ssize_t length = readlinkat(source, name, link, sizeof link - 1);
            link[length < 0 ? 0 : length] = 0;
            symlinkat(link, target, name);
        }
    }
    closedir(listing);
    close(source);
    close(target);
}

static void *work(void *unused) {
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (pending_count == 0 && busy > 0) pthread_cond_wait(&changed, &lock);
        if (pending_count == 0) {
            pthread_cond_broadcast(&changed);
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        char *relative = pending[--pending_count];
        busy++;
        pthread_mutex_unlock(&lock);
        copy_folder(relative);
        free(relative);
        pthread_mutex_lock(&lock);
        if (--busy == 0 && pending_count == 0) pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor SOURCE TARGET THREADS\n");
        return 2;
    }
    source_root = argv[1];
    target_root = argv[2];
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64 || mkdir(target_root, 0755) != 0) {
        fprintf(stderr, "floor: bad thread count or target exists\n");
        return 2;
    }
    push(strdup(""));
    pthread_t workers[64];
    for (int i = 0; i < threads; i++) pthread_create(&workers[i], NULL, work, NULL);
    for (int i = 0; i < threads; i++) pthread_join(workers[i], NULL);
    return 0;
}
