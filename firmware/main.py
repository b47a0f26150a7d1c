# Entry point on the real board: build the node from the board and its config, then cycle forever.
from fieldnode.app import Node
from fieldnode.boards.esp32s3 import Esp32S3Board


def run():
    board = Esp32S3Board()
    node = Node(board)
    while True:
        ms, deep = node.wake()
        if deep:
            board.deepsleep(ms)  # never returns: the next wake is a reset with cause deepsleep
        board.lightsleep(ms)


run()
