/* The layout of exporter._hotpath.Pending (pending.c; its iterator in pending_iter.c). */
#ifndef PENDING_H
#define PENDING_H

typedef struct {
    char *key; /* [action][u32 piece length][piece][remote]; NULL: deleted */
    Py_ssize_t len;
    Py_hash_t hash;
    double when;
} Entry;

#define BLOCK 80
typedef union Block {
    union Block *next; /* on the free list */
    char key[BLOCK];
} Block;

typedef struct Chunk {
    struct Chunk *next;
    Py_ssize_t n;
    Block blocks[];
} Chunk;

typedef struct {
    PyObject_HEAD
    Entry *entries;
    Py_ssize_t n_entries, cap; /* used slots of entries (live or holes), allocated */
    Py_ssize_t used;           /* live entries */
    Py_ssize_t first;          /* no live entry before this one */
    Py_ssize_t *index;         /* entry number, EMPTY or DUMMY; 2 * cap slots */
    Py_ssize_t mask;
    unsigned long long version; /* changes with every insert or delete (iterators check) */
    Block *free_blocks;         /* for keys of <= BLOCK bytes */
    Chunk *chunks;              /* all the blocks, for clear() */
    Py_ssize_t n_blocks;
} Pending;

/* the key of an entry as the (piece, action, remote) tuple Python sees; NULL on error */
PyObject *key_object(const Entry *e);
PyObject *pending_iter(PyObject *self); /* tp_iter */
extern PyTypeObject PendingIter_Type;

#endif
