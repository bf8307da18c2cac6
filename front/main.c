/*
 * main.c: the executable entry of palyra-front; everything else starts in
 * front_main() (front.c). Process: palyra-front. Touches nothing itself.
 */
#include "front.h"

int
main(int argc, char *argv[])
{
	return front_main(argc, argv);
}
